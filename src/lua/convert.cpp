#include "lua/convert.h"

#include <cmath>
#include <lua.hpp>

namespace kr::lua {
namespace {

std::string child(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }

}  // namespace

nlohmann::json to_json(lua_State* L, int index, const std::string& path) {
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
      throw ConvertError((path.empty() ? std::string("value") : path) + ": a " + lua_typename(L, lua_type(L, index)) +
                         " cannot be sent to fal");
  }
  // Count keys to tell a list from an object.
  size_t count = 0;
  bool all_positive_ints = true;
  double max_index = 0;
  lua_pushnil(L);
  while (lua_next(L, index)) {
    ++count;
    if (lua_type(L, -2) == LUA_TNUMBER) {
      double k = lua_tonumber(L, -2);
      if (k < 1 || std::floor(k) != k) all_positive_ints = false;
      else max_index = std::max(max_index, k);
    } else {
      all_positive_ints = false;
    }
    lua_pop(L, 1);
  }
  if (count == 0) return nlohmann::json::array();
  if (all_positive_ints) {
    if (max_index != static_cast<double>(count))
      throw ConvertError((path.empty() ? std::string("list") : path) + ": a list with holes (nil in the middle) cannot be sent");
    nlohmann::json arr = nlohmann::json::array();
    for (size_t i = 1; i <= count; ++i) {
      lua_rawgeti(L, index, static_cast<int>(i));
      arr.push_back(to_json(L, -1, path + "[" + std::to_string(i - 1) + "]"));
      lua_pop(L, 1);
    }
    return arr;
  }
  nlohmann::json obj = nlohmann::json::object();
  lua_pushnil(L);
  while (lua_next(L, index)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lua_pop(L, 2);
      throw ConvertError((path.empty() ? std::string("table") : path) + ": mixes list entries and named fields");
    }
    std::string key = lua_tostring(L, -2);
    obj[key] = to_json(L, -1, child(path, key));
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
