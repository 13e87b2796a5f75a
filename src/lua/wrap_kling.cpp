// The `kling` module: thin wrappers that turn Lua tables into Requests and jobs into result
// tables. Blocking functions live in kling_prelude.lua over the C primitives here.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <lua.hpp>

#include "core/prices.h"
#include "lua/convert.h"
#include "lua/host.h"

namespace kr::data { extern const std::string_view kling_prelude_lua; }

namespace kr::lua {
namespace {

using run::Job;
using run::Phase;

// The script position a kling call came from: the first Lua frame outside the prelude.
std::string script_position(lua_State* L) {
  lua_Debug ar;
  for (int level = 1; lua_getstack(L, level, &ar); ++level) {
    lua_getinfo(L, "Sl", &ar);
    if (ar.currentline > 0 && std::strcmp(ar.source, "=kling") != 0) {
      std::string pos = ar.short_src;
      pos += ':';
      pos += std::to_string(ar.currentline);
      return pos;
    }
  }
  return "";
}

std::string at(const std::string& pos, const std::string& msg) { return pos.empty() ? msg : pos + ": " + msg; }

// Raised inside a wrapper; turned into a Lua error outside any C++ frame (see guarded()).
struct LuaRaise {
  std::string message;
  int code;
};

LuaHost& host(lua_State* L) {
  LuaHost* h = LuaHost::from(L);
  if (!h) throw LuaRaise{"kling: the module was unloaded", exit_script};
  return *h;
}

// C++ exceptions never cross a Lua frame: every primitive runs inside this guard, and the Lua
// error is raised after the C++ frames are gone.
template <int (*F)(lua_State*)>
int guarded(lua_State* L) {
  std::string message;
  {
    try {
      return F(L);
    } catch (const LuaRaise& e) {
      message = e.message;
      if (LuaHost* h = LuaHost::from(L)) h->classify(message, e.code);
    } catch (const ConvertError& e) {
      message = at(script_position(L), e.what());
    } catch (const std::exception& e) {
      message = at(script_position(L), std::string("kling: ") + e.what());
    }
  }
  lua_pushlstring(L, message.data(), message.size());
  return lua_error(L);
}

std::string lines_at(const std::string& pos, const std::vector<Issue>& issues) {
  std::string out;
  for (auto& i : issues) out += (out.empty() ? "" : "\n") + at(pos, i.line());
  return out;
}

// A spec is the fal input plus klingrun's own fields (endpoint, name, take, timeout), read in
// one pass over the table: the klingrun fields are taken out, the rest converted as they are.
Request to_request(lua_State* L, int index) {
  if (!lua_istable(L, index)) throw LuaRaise{at(script_position(L), std::string("expected a table of fields, got ") + luaL_typename(L, index)), exit_script};
  index = index < 0 ? lua_gettop(L) + index + 1 : index;
  Request req;
  req.origin = script_position(L);
  auto bad = [&](const std::string& msg) { return LuaRaise{at(req.origin, msg), exit_script}; };
  auto shown = [&](int i) -> std::string {
    switch (lua_type(L, i)) {
      case LUA_TSTRING: return json(lua_tostring(L, i)).dump();
      case LUA_TNUMBER: return json(lua_tonumber(L, i)).dump();
      case LUA_TBOOLEAN: return lua_toboolean(L, i) ? "true" : "false";
      default: return std::string("a ") + luaL_typename(L, i);
    }
  };
  auto& fields = req.input.get_ref<json::object_t&>();
  lua_pushnil(L);
  while (lua_next(L, index)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lua_pop(L, 2);
      throw bad("expected a table of named fields (prompt=..., duration=...)");
    }
    size_t len = 0;
    const char* k = lua_tolstring(L, -2, &len);
    std::string_view key(k, len);
    if (key == "endpoint" || key == "name") {
      if (lua_type(L, -1) != LUA_TSTRING) throw bad(std::string(key) + ": must be a string, got " + shown(-1));
      size_t n = 0;
      const char* v = lua_tolstring(L, -1, &n);
      (key == "endpoint" ? req.endpoint : req.name).assign(v, n);
    } else if (key == "take") {
      double d = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
      if (d < 0 || std::floor(d) != d || d > 1e9) throw bad("take: must be a whole number ≥ 0, got " + shown(-1));
      req.take = static_cast<int>(d);
    } else if (key == "timeout") {
      double d = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
      if (!(d > 0)) throw bad("timeout: must be a positive number of seconds, got " + shown(-1));
      req.timeout_s = d;
    } else if (key == "start_timeout") {
      // fal's clients refuse 1 s or less (docs/fal-protocol.md#headers).
      double d = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
      if (!(d > 1)) throw bad("start_timeout: must be a number of seconds above 1, got " + shown(-1));
      req.start_timeout_s = d;
    } else if (key == "priority") {
      const char* v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
      if (std::strcmp(v, "low") != 0 && std::strcmp(v, "normal") != 0)
        throw bad("priority: must be \"normal\" or \"low\", got " + shown(-1));
      req.low_priority = std::strcmp(v, "low") == 0;
    } else {
      JsonPath here{nullptr, key, 0};
      fields.emplace(std::string(key), to_json(L, -1, &here));
    }
    lua_pop(L, 1);
  }
  return req;
}

Job& job_by_id(lua_State* L, int index) {
  auto& jobs = host(L).runner().jobs();
  lua_Integer id = luaL_checkinteger(L, index);
  if (id < 1 || static_cast<size_t>(id) > jobs.size()) throw LuaRaise{at(script_position(L), "no such job"), exit_script};
  return *jobs[static_cast<size_t>(id - 1)];
}

void set_number(lua_State* L, const char* k, double v) { lua_pushnumber(L, v); lua_setfield(L, -2, k); }
void set_string(lua_State* L, const char* k, const std::string& v) { lua_pushlstring(L, v.data(), v.size()); lua_setfield(L, -2, k); }

void push_issues(lua_State* L, const std::vector<Issue>& issues) {
  lua_createtable(L, static_cast<int>(issues.size()), 0);
  int i = 1;
  for (auto& is : issues) {
    lua_createtable(L, 0, 2);
    set_string(L, "path", is.path);
    set_string(L, "message", is.message);
    lua_rawseti(L, -2, i++);
  }
}

void push_breakdown(lua_State* L, const Endpoint& ep, const Estimate& e) {
  lua_createtable(L, 0, 7);
  set_string(L, "endpoint", ep.id);
  set_number(L, "rate", e.rate);
  set_number(L, "seconds", e.seconds);
  set_string(L, "audio", e.audio);
  set_string(L, "formula", e.formula());
  set_string(L, "source", e.source());
  if (!e.note().empty()) set_string(L, "note", e.note());
  set_number(L, "usd", e.usd);
}

// What a blocking call returns: true + result table, or false + the job's error message.
int push_outcome(lua_State* L, LuaHost& h, const Job& j) {
  if (j.phase == Phase::done) {
    lua_pushboolean(L, 1);
    lua_createtable(L, 0, 12);
    set_string(L, "name", j.name);
    set_string(L, "endpoint", j.endpoint->id);
    push_json(L, j.input);
    lua_setfield(L, -2, "input");
    set_number(L, "cost_usd", j.reused ? 0.0 : j.cost.usd);
    set_number(L, "estimate_usd", j.cost.usd);
    if (j.offline) { lua_pushboolean(L, 1); lua_setfield(L, -2, "offline"); }
    if (j.reused) { lua_pushboolean(L, 1); lua_setfield(L, -2, "reused"); }
    if (!j.request_id.empty()) set_string(L, "request_id", j.request_id);
    lua_createtable(L, 0, 4);
    set_string(L, "url", j.video_url);
    set_string(L, "path", j.video_path);
    set_number(L, "file_size", static_cast<double>(j.video_bytes));
    if (!j.video_sha256.empty()) set_string(L, "sha256", j.video_sha256);
    lua_setfield(L, -2, "video");
    push_json(L, j.output);
    lua_setfield(L, -2, "output");
    lua_createtable(L, 0, 4);
    set_number(L, "submitted", j.t_submitted);
    set_number(L, "started", j.t_started);
    set_number(L, "completed", j.t_completed);
    set_number(L, "done", j.t_done);
    lua_setfield(L, -2, "timings");
    push_issues(L, j.warnings);
    lua_setfield(L, -2, "warnings");
    return 2;
  }
  std::string msg = "job \"" + j.name + "\" " +
                    (j.phase == Phase::unknown ? "has an unknown outcome" : j.phase == Phase::cancelled ? "was cancelled" : "failed");
  if (j.error) {
    msg += ": " + j.error->message;
    if (!j.error->request_id.empty()) msg += " [request " + j.error->request_id + "]";
    for (auto& l : j.error->lines) msg += "\n  " + l;
    if (!j.error->advice.empty()) msg += "\n  " + j.error->advice;
  }
  if (!j.origin.empty()) msg += "\n  (submitted at " + j.origin + ")";
  h.classify(msg, j.error && j.error->kind == run::ErrorKind::budget ? exit_budget : exit_failed);
  lua_pushboolean(L, 0);
  lua_pushlstring(L, msg.data(), msg.size());
  return 2;
}

int c_submit(lua_State* L) {
  LuaHost& h = host(L);
  Request req = to_request(L, 1);
  std::string pos = req.origin;
  std::string given = req.name;
  try {
    Job& j = h.runner().submit(std::move(req));
    lua_pushinteger(L, static_cast<lua_Integer>(j.id));
    if (j.name == given) lua_pushnil(L);  // the prelude keeps spec.name
    else lua_pushlstring(L, j.name.data(), j.name.size());
    lua_pushnumber(L, j.cost.usd);
    return 3;
  } catch (const run::SubmitRefused& e) {
    using Why = run::SubmitRefused::Why;
    int code = e.why == Why::budget ? exit_budget : e.why == Why::stopped ? exit_interrupted : exit_script;
    throw LuaRaise{e.issues.empty() ? at(pos, e.what()) : lines_at(pos, e.issues), code};
  }
}

int c_await(lua_State* L) {
  LuaHost& h = host(L);
  Job& j = job_by_id(L, 1);
  if (run::finished(j.phase) && j.waiters.empty()) return push_outcome(L, h, j);
  if (LuaHost::Task* t = h.current_task(L)) {
    LuaHost* hp = &h;
    j.waiters.push_back([hp, t](Job& done) { hp->wake(t, [hp, &done](lua_State* co) { return push_outcome(co, *hp, done) ; }); });
    return lua_yield(L, 0);
  }
  h.block_until([&j] { return run::finished(j.phase) && j.waiters.empty(); });
  return push_outcome(L, h, j);
}

int c_job_status(lua_State* L) {
  Job& j = job_by_id(L, 1);
  lua_pushstring(L, run::phase_name(j.phase));
  return 1;
}

// What a script can branch on: {kind, message, request_id, lines, advice, final_on_fal}.
void push_error(lua_State* L, const run::JobError& e) {
  lua_createtable(L, 0, 6);
  set_string(L, "kind", run::error_kind_name(e.kind));
  set_string(L, "message", e.message);
  if (!e.request_id.empty()) set_string(L, "request_id", e.request_id);
  lua_createtable(L, static_cast<int>(e.lines.size()), 0);
  for (std::size_t i = 0; i < e.lines.size(); ++i) {
    lua_pushlstring(L, e.lines[i].data(), e.lines[i].size());
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
  lua_setfield(L, -2, "lines");
  if (!e.advice.empty()) set_string(L, "advice", e.advice);
  lua_pushboolean(L, e.final_on_fal);
  lua_setfield(L, -2, "final_on_fal");
}

// nil while the job runs or when it produced its video; else its error table.
int c_job_error(lua_State* L) {
  Job& j = job_by_id(L, 1);
  if (!run::finished(j.phase) || !j.error) return 0;
  push_error(L, *j.error);
  return 1;
}

int c_job_cancel(lua_State* L) {
  LuaHost& h = host(L);
  Job& j = job_by_id(L, 1);
  h.runner().cancel(j);
  return 0;
}

int c_spawn(lua_State* L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  return host(L).spawn(L, 1, lua_gettop(L) - 1);
}

int c_element(lua_State* L) {
  LuaHost& h = host(L);
  std::string pos = script_position(L);
  if (!lua_istable(L, 1)) throw LuaRaise{at(pos, "kling.element: expected a table {name=..., frontal=..., references={...}} or {name=..., video=...}"), exit_script};
  json t = to_json(L, 1, std::string_view("element"));
  Element e;
  e.origin = pos;
  auto str = [&](const char* k) -> std::string {
    if (!t.contains(k)) return "";
    if (!t[k].is_string()) throw LuaRaise{at(pos, std::string("element.") + k + ": must be a string, got " + t[k].dump()), exit_script};
    return t[k];
  };
  for (auto& [k, _] : t.items())
    if (k != "name" && k != "frontal" && k != "references" && k != "video" && k != "voice_id")
      throw LuaRaise{at(pos, "element." + k + ": is not a field of an element (name, frontal, references, video, voice_id)"), exit_script};
  e.name = str("name");
  e.frontal = str("frontal");
  e.video = str("video");
  e.voice_id = str("voice_id");
  if (t.contains("references")) {
    if (!t["references"].is_array()) throw LuaRaise{at(pos, "element.references: must be a list of image paths or URLs"), exit_script};
    for (auto& r : t["references"]) {
      if (!r.is_string()) throw LuaRaise{at(pos, "element.references: every entry must be a string, got " + r.dump()), exit_script};
      e.references.push_back(r);
    }
  }
  Report report;
  std::string name = e.name;
  if (!h.runner().elements().add(std::move(e), report, "element")) throw LuaRaise{lines_at(pos, report.errors), exit_script};
  lua_pushstring(L, name.c_str());
  return 1;
}

int c_cost(lua_State* L) {
  LuaHost& h = host(L);
  Request req = to_request(L, 1);
  Prepared p = h.runner().check(req);
  if (!p.ok()) throw LuaRaise{lines_at(req.origin, p.report.errors), exit_script};
  lua_pushnumber(L, p.cost->usd);
  push_breakdown(L, *p.endpoint, *p.cost);
  return 2;
}

int c_validate(lua_State* L) {
  LuaHost& h = host(L);
  Request req = to_request(L, 1);
  Prepared p = h.runner().check(req);
  lua_pushboolean(L, p.ok());
  push_issues(L, p.report.errors);
  push_issues(L, p.report.warnings);
  push_json(L, p.input);
  return 4;
}

int c_budget(lua_State* L) {
  auto& r = host(L).runner();
  if (!lua_isnoneornil(L, 1)) {
    double d = luaL_checknumber(L, 1);
    if (d < 0) throw LuaRaise{at(script_position(L), "kling.budget: the budget must be ≥ 0 dollars"), exit_script};
    r.set_budget(d);
  }
  if (r.budget()) lua_pushnumber(L, *r.budget()); else lua_pushnil(L);
  lua_pushnumber(L, r.spent());
  return 2;
}

int c_concurrency(lua_State* L) {
  auto& r = host(L).runner();
  if (!lua_isnoneornil(L, 1)) {
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n < 1) throw LuaRaise{at(script_position(L), "kling.concurrency: needs a whole number ≥ 1"), exit_script};
    r.set_concurrency(static_cast<int>(n));
  }
  lua_pushinteger(L, r.concurrency());
  return 1;
}

int c_endpoints(lua_State* L) {
  auto& all = Catalog::builtin().all();
  lua_createtable(L, static_cast<int>(all.size()), 0);
  int i = 1;
  for (auto& e : all) {
    lua_createtable(L, 0, 6);
    set_string(L, "id", e.id);
    set_string(L, "short", e.short_id);
    set_string(L, "family", e.family);
    set_string(L, "tier", e.tier);
    set_string(L, "mode", e.mode);
    push_json(L, e.spec["fields"]);
    lua_setfield(L, -2, "fields");
    lua_rawseti(L, -2, i++);
  }
  return 1;
}

int c_prices(lua_State* L) {
  push_json(L, host(L).runner().options().prices->doc()["rows"]);
  return 1;
}

// Every job of this run so far: {name, status, endpoint, cost_usd, request_id, error}.
int c_jobs(lua_State* L) {
  auto& jobs = host(L).runner().jobs();
  lua_createtable(L, static_cast<int>(jobs.size()), 0);
  int i = 1;
  for (auto& j : jobs) {
    lua_createtable(L, 0, 5);
    set_string(L, "name", j->name);
    set_string(L, "status", run::phase_name(j->phase));
    set_string(L, "endpoint", j->endpoint->id);
    set_number(L, "cost_usd", j->reused ? 0.0 : j->cost.usd);
    if (!j->request_id.empty()) set_string(L, "request_id", j->request_id);
    if (run::finished(j->phase) && j->error) {
      push_error(L, *j->error);
      lua_setfield(L, -2, "error");
    }
    lua_rawseti(L, -2, i++);
  }
  return 1;
}

int c_tick(lua_State* L) {
  host(L).tick(static_cast<int>(luaL_optinteger(L, 1, 0)));
  lua_pushboolean(L, host(L).done());
  return 1;
}

int c_run(lua_State* L) {
  LuaHost& h = host(L);
  while (!h.done()) h.tick(100);
  return 0;
}

// Waits for a spawned task: true + its return values, or false + its error.
int c_await_task(lua_State* L) {
  LuaHost& h = host(L);
  lua_Integer id = luaL_checkinteger(L, 1);
  LuaHost::Task* task = h.task_by_id(static_cast<int>(id));
  if (!task) throw LuaRaise{at(script_position(L), "no such task"), exit_script};
  auto push = [task](lua_State* co) {
    if (!task->error.empty()) {
      lua_pushboolean(co, 0);
      lua_pushstring(co, task->error.c_str());
      return 2;
    }
    lua_pushboolean(co, 1);
    lua_rawgeti(co, LUA_REGISTRYINDEX, task->results_ref);
    lua_getfield(co, -1, "n");
    int n = static_cast<int>(lua_tointeger(co, -1));
    lua_pop(co, 1);
    int base = lua_gettop(co);
    for (int i = 1; i <= n; ++i) lua_rawgeti(co, base, i);
    lua_remove(co, base);
    return n + 1;
  };
  if (task->finished) return push(L);
  if (LuaHost::Task* self = h.current_task(L)) {
    if (self == task) throw LuaRaise{at(script_position(L), "a task cannot wait for itself"), exit_script};
    LuaHost* hp = &h;
    task->waiters.push_back([hp, self, push] { hp->wake(self, push); });
    return lua_yield(L, 0);
  }
  h.block_until([task] { return task->finished; });
  return push(L);
}

}  // namespace

int open_kling(lua_State* L, LuaHost& h) {
  static const luaL_Reg module_fns[] = {
      {"element", guarded<c_element>},         {"cost", guarded<c_cost>},
      {"validate", guarded<c_validate>},       {"budget", guarded<c_budget>},
      {"concurrency", guarded<c_concurrency>}, {"endpoints", guarded<c_endpoints>},
      {"prices", guarded<c_prices>},           {"tick", guarded<c_tick>},
      {"run", guarded<c_run>},                 {"jobs", guarded<c_jobs>},
      {nullptr, nullptr}};
  static const luaL_Reg primitives[] = {
      {"submit", guarded<c_submit>},         {"await", guarded<c_await>},
      {"job_status", guarded<c_job_status>}, {"job_cancel", guarded<c_job_cancel>},
      {"job_error", guarded<c_job_error>},
      {"spawn", guarded<c_spawn>},           {"await_task", guarded<c_await_task>},
      {nullptr, nullptr}};
  lua_newtable(L);
  luaL_register(L, nullptr, module_fns);
  lua_pushstring(L, KLINGRUN_VERSION);
  lua_setfield(L, -2, "version");
  lua_pushboolean(L, h.runner().backend().name() == "offline");
  lua_setfield(L, -2, "offline");
  lua_pushstring(L, h.runner().backend().name().c_str());
  lua_setfield(L, -2, "backend");
  int module = lua_gettop(L);
  if (luaL_loadbuffer(L, data::kling_prelude_lua.data(), data::kling_prelude_lua.size(), "=kling") != 0)
    return lua_error(L);
  lua_pushvalue(L, module);
  lua_newtable(L);
  luaL_register(L, nullptr, primitives);
  lua_call(L, 2, 1);  // returns the module table
  lua_remove(L, module);
  return 1;
}

}  // namespace kr::lua
