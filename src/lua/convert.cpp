#include "lua/convert.h"

#include <cmath>
#include <lua.hpp>

namespace kr::lua {

std::string JsonPath::str() const {
  std::string head = parent ? parent->str() : std::string();
  if (!key.empty()) return head.empty() ? std::string(key) : head + "." + std::string(key);
  return head + "[" + std::to_string(index) + "]";
}

namespace {

std::string where(const JsonPath* path, const char* fallback) { return path ? path->str() : std::string(fallback); }

}  // namespace

nlohmann::json to_json(lua_State* L, int index, std::string_view root) {
  JsonPath top{nullptr, root, 0};
  return to_json(L, index, root.empty() ? nullptr : &top);
}

nlohmann::json to_json(lua_State* L, int index, const JsonPath* path) {
  index = index < 0 ? lua_gettop(L) + index + 1 : index;
  switch (lua_type(L, index)) {
    case LUA_TNIL: return nullptr;
    case LUA_TBOOLEAN: return static_cast<bool>(lua_toboolean(L, index));
    case LUA_TNUMBER: {
      double d = lua_tonumber(L, index);
      if (std::floor(d) == d && std::fabs(d) < 9.0e15) return static_cast<long long>(d);
      return d;
    }
    case LUA_TSTRING: {
      size_t n = 0;
      const char* s = lua_tolstring(L, index, &n);
      return std::string(s, n);
    }
    case LUA_TTABLE: break;
    default:
      throw ConvertError(where(path, "value") + ": a " + lua_typename(L, lua_type(L, index)) + " cannot be sent to fal");
  }
  // A list has 1..n; lua_objlen finds n cheaply, and one key past it or a non-integer key
  // shows the table is not (only) a list.
  size_t n = lua_objlen(L, index);
  lua_pushnil(L);
  if (!lua_next(L, index)) return nlohmann::json::array();  // empty
  bool string_key = lua_type(L, -2) == LUA_TSTRING;
  lua_pop(L, 2);
  if (!string_key) {
    // Every key must be 1..n: count them, and refuse holes and named fields.
    size_t count = 0;
    bool named = false, holes = false;
    lua_pushnil(L);
    while (lua_next(L, index)) {
      ++count;
      if (lua_type(L, -2) != LUA_TNUMBER) named = true;
      else {
        double k = lua_tonumber(L, -2);
        if (k < 1 || std::floor(k) != k) named = true;
        else if (k > static_cast<double>(n)) holes = true;
      }
      lua_pop(L, 1);
    }
    if (named) throw ConvertError(where(path, "table") + ": mixes list entries and named fields");
    if (holes || count != n) throw ConvertError(where(path, "list") + ": a list with holes (nil in the middle) cannot be sent");
    nlohmann::json arr = nlohmann::json::array();
    arr.get_ref<nlohmann::json::array_t&>().reserve(n);
    for (size_t i = 1; i <= n; ++i) {
      lua_rawgeti(L, index, static_cast<int>(i));
      JsonPath here{path, {}, i - 1};
      arr.push_back(to_json(L, -1, &here));
      lua_pop(L, 1);
    }
    return arr;
  }
  nlohmann::json obj = nlohmann::json::object();
  auto& fields = obj.get_ref<nlohmann::json::object_t&>();
  lua_pushnil(L);
  while (lua_next(L, index)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lua_pop(L, 2);
      throw ConvertError(where(path, "table") + ": mixes list entries and named fields");
    }
    size_t len = 0;
    const char* k = lua_tolstring(L, -2, &len);
    JsonPath here{path, std::string_view(k, len), 0};
    fields.emplace_hint(fields.end(), std::string(k, len), to_json(L, -1, &here));
    lua_pop(L, 1);
  }
  return obj;
}

void push_json(lua_State* L, const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null: lua_pushnil(L); break;
    case nlohmann::json::value_t::boolean: lua_pushboolean(L, v.get<bool>()); break;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float: lua_pushnumber(L, v.get<double>()); break;
    case nlohmann::json::value_t::string: {
      auto& s = v.get_ref<const std::string&>();
      lua_pushlstring(L, s.data(), s.size());
      break;
    }
    case nlohmann::json::value_t::array: {
      lua_createtable(L, static_cast<int>(v.size()), 0);
      int i = 1;
      for (auto& e : v) { push_json(L, e); lua_rawseti(L, -2, i++); }
      break;
    }
    case nlohmann::json::value_t::object: {
      lua_createtable(L, 0, static_cast<int>(v.size()));
      for (auto& [k, e] : v.items()) { push_json(L, e); lua_setfield(L, -2, k.c_str()); }
      break;
    }
    default: lua_pushnil(L);
  }
}

}  // namespace kr::lua
