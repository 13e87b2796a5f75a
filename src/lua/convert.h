// Lua tables ↔ JSON. A table with keys 1..n is a list, a table with string keys an object; an
// empty table is an empty list (fal's inputs have no empty objects). Mixed tables are refused
// with the path of the offending key.
#pragma once
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

struct lua_State;

namespace kr::lua {

struct ConvertError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Where a value sits in the table being converted. A chain on the stack, rendered only when an
// error names it: a plan converts every field of 100,000 specs and names almost none.
struct JsonPath {
  const JsonPath* parent = nullptr;
  std::string_view key;  // a field name, or empty for a list index
  std::size_t index = 0;
  std::string str() const;
};

nlohmann::json to_json(lua_State* L, int index, const JsonPath* path = nullptr);
// The same, naming the top level `root` in errors (e.g. "element").
nlohmann::json to_json(lua_State* L, int index, std::string_view root);
void push_json(lua_State* L, const nlohmann::json& value);

}  // namespace kr::lua
