// Lua tables ↔ JSON. A table with keys 1..n is a list, a table with string keys an object; an
// empty table is an empty list (fal's inputs have no empty objects). Mixed tables are refused
// with the path of the offending key.
#pragma once
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

struct lua_State;

namespace kr::lua {

struct ConvertError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

nlohmann::json to_json(lua_State* L, int index, const std::string& path = "");
void push_json(lua_State* L, const nlohmann::json& value);

}  // namespace kr::lua
