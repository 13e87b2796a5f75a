// A request is plain data from the moment it leaves Lua: endpoint id, fal input, and klingrun's
// own metadata. Nothing below the binding knows where it came from except `origin` (file:line).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace kr {

using json = nlohmann::json;

struct Request {
  std::string endpoint;  // full fal id or a short form ("v3/pro/t2v"); resolved by the catalog
  json input = json::object();
  std::string name;      // job name, used for output files
  int take = 0;          // a new variant of otherwise identical input
  double timeout_s = 0;  // client-side deadline on fal (0 = none); not part of the job's identity
  // How fal queues it (neither is part of the job's identity): low priority, and a deadline for
  // the job to *start* after which fal itself ends it, before any inference (0 = none).
  bool low_priority = false;
  double start_timeout_s = 0;
  std::string origin;    // "script.lua:12", for messages
};

}  // namespace kr
