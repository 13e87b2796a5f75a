// Renders docs/endpoints.md from data/endpoints.json and data/prices.json: every endpoint's
// fields, enums, limits, defaults and prices, each with its source. The docs test compares the
// committed file with a fresh rendering, so the reference can never drift from the data.
#pragma once
#include <set>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace kr::docs {

// The source keys docs/sources.md defines (its `<a id="…">` anchors, lower case).
std::set<std::string> source_anchors(const std::string& sources_md);

// Throws std::runtime_error when a source string names a key sources.md does not define.
std::string render_endpoint_reference(const nlohmann::json& endpoints, const nlohmann::json& prices,
                                      const std::set<std::string>& source_keys);

}  // namespace kr::docs
