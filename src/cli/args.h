// Command-line arguments of klingrun: one struct, one parser, no surprises.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace kr::cli {

struct Args {
  std::string command = "run";   // run, plan, check, prices, status, cancel, gc, help, version
  std::string script;
  std::vector<std::string> script_args;
  std::vector<std::string> positional;  // command operands (check FILE, cancel NAME)

  bool json = false, quiet = false, fresh = false, resubmit_unknown = false, cancel_on_interrupt = false, all = false;
  std::string backend;           // "", "offline", "fal"
  std::optional<double> budget;
  int concurrency = 2;
  std::string out = "out";
  std::string state;             // state dir; default <out>/.klingrun
  std::string prices;
  std::string endpoint;          // check --endpoint
  std::string queue_url, rest_url;
};

// Throws std::invalid_argument with a message for the user (exit code 2).
Args parse_args(int argc, char** argv);
std::string help_text();

}  // namespace kr::cli
