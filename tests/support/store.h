#pragma once
// Test helper: the JobIntent a state-store test claims, one per key. Header-only.

#include <string>

#include "run/state_store.h"

namespace krt {

inline kr::run::JobIntent store_intent(const std::string& key, const std::string& name = "shot",
                                       const std::string& script = "s.lua") {
  kr::run::JobIntent in;
  in.key = key;
  in.name = name;
  in.script = script;
  in.endpoint = "fal-ai/kling-video/v2.1/standard/text-to-video";
  in.input = {{"prompt", "a fox in the snow " + key}, {"duration", "5"}};
  in.take = 1;
  in.cost_usd = 0.28;
  return in;
}

}  // namespace krt
