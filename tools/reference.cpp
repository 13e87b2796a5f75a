#include "reference.h"

#include <cstdio>
#include <regex>
#include <sstream>
#include <vector>

namespace kr::docs {
namespace {

using json = nlohmann::json;

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A word that is written like a source key: "F-V3P", "T-FEB10", "S2".
bool looks_like_key(const std::string& w) {
  static const std::regex key(R"(([A-Z][A-Z0-9]*(-[A-Z0-9]+)+)|(S[0-9]))");
  return std::regex_match(w, key) && w.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string::npos;
}

// The source text with every key linked to its entry in sources.md.
std::string link_sources(const std::string& text, const std::set<std::string>& keys, const std::string& where) {
  std::string out, word;
  auto flush = [&] {
    if (word.empty()) return;
    // Keys are written in capitals ("F-V3P", "S2"); a plain word ("fal") is never a key.
    bool capitals = word.find_first_of("abcdefghijklmnopqrstuvwxyz") == std::string::npos &&
                    word.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string::npos;
    if (capitals && keys.count(lower(word))) out += "[" + word + "](sources.md#" + lower(word) + ")";
    else if (looks_like_key(word)) throw std::runtime_error(where + ": source key " + word + " is not defined in docs/sources.md");
    else out += word;
    word.clear();
  };
  for (char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '-') word += c;
    else { flush(); out += c; }
  }
  flush();
  return out;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  std::string s = buf;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

std::string usd(const json& v) { return v.is_number() ? "$" + num(v.get<double>()) : "—"; }

std::string code(const std::string& s) { return "`" + s + "`"; }

std::string show(const json& v) {
  if (v.is_string()) return code("\"" + v.get<std::string>() + "\"");
  if (v.is_number_float()) return code(num(v.get<double>()));
  return code(v.dump());
}

std::string slug(const std::string& short_id) {
  std::string s;
  for (char c : short_id) s += (c == '/' || c == '.') ? '-' : c;
  return s;
}

std::string rule(int n) { return "[rule " + std::to_string(n) + "](validation.md#r" + std::to_string(n) + ")"; }

std::string type_name(const std::string& t, const json& f) {
  std::string media = f.value("media", "");
  if (t == "string") return "string";
  if (t == "number") return "number";
  if (t == "boolean") return "boolean";
  if (t == "duration") return "string (seconds)";
  if (t == "url") return media.empty() ? "URL or file" : media + " (URL or file)";
  if (t == "url_list") return "list of " + (media.empty() ? std::string("URLs or files") : media + "s (URLs or files)");
  if (t == "string_list") return "list of strings";
  if (t == "multi_prompt") return "list of shots `{prompt, duration}`";
  if (t == "elements") return "list of elements";
  return t;
}

// "3" … "15" when the enum is a run of whole numbers, else every value.
std::string enum_text(const json& values) {
  std::vector<std::string> v;
  for (auto& e : values) v.push_back(e.get<std::string>());
  bool run = v.size() > 3;
  for (std::size_t i = 0; run && i < v.size(); ++i) {
    if (v[i].empty() || v[i].find_first_not_of("0123456789") != std::string::npos) run = false;
    else if (i && std::stol(v[i]) != std::stol(v[i - 1]) + 1) run = false;
  }
  if (run) return code("\"" + v.front() + "\"") + " … " + code("\"" + v.back() + "\"");
  std::string out;
  for (auto& s : v) out += (out.empty() ? "" : ", ") + code("\"" + s + "\"");
  return out;
}

std::string limits_text(const std::string& name, const json& f) {
  std::vector<std::string> parts;
  if (f.contains("enum")) parts.push_back(enum_text(f["enum"]));
  if (f.contains("min") || f.contains("max"))
    parts.push_back(code(num(f.value("min", 0.0))) + " … " + code(num(f.value("max", 0.0))));
  if (f.contains("max_length")) parts.push_back("≤ " + std::to_string(f["max_length"].get<int>()) + " characters (" + rule(5) + ")");
  if (f.contains("max_items")) parts.push_back("≤ " + std::to_string(f["max_items"].get<int>()) + " entries");
  if (f.contains("media")) parts.push_back("[" + f["media"].get<std::string>() + " limits](#media) (" + rule(24) + ")");
  if (name == "multi_prompt") parts.push_back("rules [6](validation.md#r6)–[9](validation.md#r9)");
  if (name == "elements") parts.push_back("rules [17](validation.md#r17)–[20](validation.md#r20)");
  if (f.contains("warn_values"))
    for (auto& [v, why] : f["warn_values"].items()) parts.push_back(code("\"" + v + "\"") + " is accepted with a warning: " + why.get<std::string>());
  if (f.contains("value_hints"))
    for (auto& [v, why] : f["value_hints"].items()) parts.push_back(code("\"" + v + "\"") + " is refused: " + why.get<std::string>());
  std::string out;
  for (auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out.empty() ? "—" : out;
}

std::string required_text(const json& e, const std::string& name) {
  std::string rule_ = e.value("prompt_rule", "");
  if (e.value("start_image", "") == name) return "**yes**";
  if (rule_ == "required" && name == "prompt") return "**yes**";
  if (rule_ == "xor_multi" && (name == "prompt" || name == "multi_prompt")) return "one of `prompt`, `multi_prompt`";
  return "no";
}

std::string default_text(const json& f) {
  if (!f.contains("default")) return "—";
  std::string s = show(f["default"]);
  if (f.value("fill", false)) s += " (written in)";
  else if (f.value("fill_with", "") == "multi_prompt") s += " (written in with shots)";
  return s;
}

std::string price_text(const json& row) {
  if (row.value("formula", "") == "first5")
    return usd(row["first_5s"]) + " for the first 5 s + " + usd(row["per_extra_second"]) + " per further second";
  std::string s = "off " + usd(row.value("off", json())) + " · on " + usd(row.value("on", json()));
  if (row.contains("voice") && !row["voice"].is_null()) s += " · voice " + usd(row["voice"]);
  return s + " per second";
}

bool lists(const json& row, const std::string& id) {
  for (auto& e : row["endpoints"]) if (e == id) return true;
  return false;
}

const json* current_row(const json& prices, const std::string& id) {
  for (auto& row : prices["rows"]) if (row.value("current", false) && lists(row, id)) return &row;
  return nullptr;
}

std::string row_source(const json& row, const std::set<std::string>& keys, const std::string& where) {
  std::string s = link_sources(row.value("source", ""), keys, where);
  if (row.contains("date")) s += "; " + row["date"].get<std::string>();
  if (row.contains("note")) s += ". " + row["note"].get<std::string>();
  return s;
}

std::string audio_default(const json& e) {
  auto& f = e["fields"];
  if (!f.contains("generate_audio")) return "no switch";
  return f["generate_audio"].value("default", false) ? "on" : "off";
}

}  // namespace

std::set<std::string> source_anchors(const std::string& md) {
  std::set<std::string> out;
  static const std::regex anchor(R"re(<a id="([^"]+)"></a>)re");
  for (auto it = std::sregex_iterator(md.begin(), md.end(), anchor); it != std::sregex_iterator(); ++it) out.insert((*it)[1]);
  return out;
}

std::string render_endpoint_reference(const json& doc, const json& prices, const std::set<std::string>& keys) {
  std::ostringstream o;
  const std::string prefix = "fal-ai/kling-video/";
  o << "<!-- Generated by tools/gen_reference from data/endpoints.json and data/prices.json. Do not edit:\n"
       "     change the data, then run `cmake --build build --target docs`. The docs test fails while\n"
       "     this file and the data disagree. -->\n";
  o << "# Endpoint reference\n\n"
       "Every endpoint klingrun knows, with the fields it takes, their types, values, limits and\n"
       "defaults, and its price, each with its source ([sources.md](sources.md) explains the keys).\n"
       "Cross-field rules are in [validation.md](validation.md); how a price becomes a cost is in\n"
       "[prices.md](prices.md). Every fal id starts with `" << prefix << "`; scripts may use it in full,\n"
       "without that prefix, or as the short form.\n\n";
  o << "Prices are in " << prices.value("currency", "USD") << ", as of " << prices.value("as_of", "?")
    << " (the date of the table; fal's pages are undated).\n\n";

  o << "| short form | fal id | audio default | price now |\n|---|---|---|---|\n";
  for (auto& e : doc["endpoints"]) {
    std::string id = e["id"], short_id = e["short"];
    const json* row = current_row(prices, id);
    o << "| [" << code(short_id) << "](#" << slug(short_id) << ") | " << code(id.substr(prefix.size())) << " | "
      << audio_default(e) << " | " << (row ? price_text(*row) : "no price") << " |\n";
  }

  o << "\n<a id=\"media\"></a>\n## Media limits\n\n"
       "Local files are checked against these before anything is uploaded; URLs by their extension\n"
       "only ([rule 24](validation.md#r24)). Source: "
    << link_sources(doc["media"].value("source", ""), keys, "media") << ".\n\n";
  o << "| kind | extensions | with a warning | size | frame | length | frame rate |\n|---|---|---|---|---|---|---|\n";
  for (auto& [kind, m] : doc["media"].items()) {
    if (!m.is_object()) continue;
    auto join = [](const json& a) {
      std::string s;
      for (auto& x : a) s += (s.empty() ? "" : ", ") + x.get<std::string>();
      return s.empty() ? std::string("—") : s;
    };
    std::string frame = "—", length = "—", fps = "—";
    if (m.contains("min_aspect"))
      frame = "sides ≥ " + num(m["min_side"]) + " px, width/height " + num(m["min_aspect"]) + "–" + num(m["max_aspect"]);
    else if (m.contains("max_side"))
      frame = "each side " + num(m["min_side"]) + "–" + num(m["max_side"]) + " px";
    if (m.contains("min_seconds")) length = num(m["min_seconds"]) + "–" + num(m["max_seconds"]) + " s";
    if (m.contains("min_fps")) fps = num(m["min_fps"]) + "–" + num(m["max_fps"]) + " fps";
    o << "| " << kind << " | " << join(m["extensions"]) << " | " << join(m.value("warn_extensions", json::array()))
      << " | ≤ " << num(m["max_bytes"].get<double>() / 1e6) << " MB | " << frame << " | " << length << " | " << fps << " |\n";
  }

  o << "\n<a id=\"limits\"></a>\n## Limits shared by every endpoint\n\n| limit | value | source |\n|---|---|---|\n";
  const json& lim = doc["limits"];
  const json srcs = lim.value("source", json::object());
  static const std::pair<const char*, const char*> limit_names[] = {
      {"shot_prompt_max", "characters per shot prompt"}, {"max_shots", "shots per request"},
      {"shot_min_seconds", "seconds per shot, at least"}, {"min_references", "reference images per image element, at least"},
      {"max_references", "reference images per image element, at most"}};
  for (auto& [key, what] : limit_names)
    if (lim.contains(key))
      o << "| " << what << " | " << lim[key].dump() << " | " << link_sources(srcs.value(key, ""), keys, std::string("limits.") + key) << " |\n";

  o << "\n<a id=\"hints\"></a>\n## Fields no endpoint has\n\nRefused with a hint ([rule 1](validation.md#r1)):\n\n";
  for (auto& [field, hint] : doc["hints"].items()) o << "- " << code(field) << ": " << hint.get<std::string>() << "\n";

  for (auto& e : doc["endpoints"]) {
    std::string id = e["id"], short_id = e["short"];
    std::string where = short_id;
    o << "\n<a id=\"" << slug(short_id) << "\"></a>\n## " << code(short_id) << "\n\n";
    o << "fal id " << code(id) << " · family " << e["family"].get<std::string>() << " · tier " << e["tier"].get<std::string>()
      << " · mode " << e["mode"].get<std::string>() << ". Source: " << link_sources(e.value("source", ""), keys, where) << ".\n\n";
    o << "| field | type | required | default | values and limits | source |\n|---|---|---|---|---|---|\n";
    for (auto& [name, f] : e["fields"].items()) {
      o << "| " << code(name) << " | " << type_name(f.value("type", "string"), f) << " | " << required_text(e, name) << " | "
        << default_text(f) << " | " << limits_text(name, f) << " | "
        << (f.contains("source") ? link_sources(f["source"].get<std::string>(), keys, where + "." + name) : "as the endpoint") << " |\n";
    }
    o << "\n";
    std::string prompt_rule = e.value("prompt_rule", "");
    if (prompt_rule == "xor_multi") o << "- Exactly one of `prompt` and `multi_prompt` (" << rule(3) << ").\n";
    if (prompt_rule == "required") o << "- `prompt` is required and not empty (" << rule(4) << ").\n";
    if (e.contains("start_image")) o << "- First frame: " << code(e["start_image"]) << ", required (" << rule(15) << ").\n";
    if (e.contains("optional_start_image")) o << "- First frame: " << code(e["optional_start_image"]) << ", optional (" << rule(15) << ").\n";
    if (e.contains("end_image")) {
      o << "- Last frame: " << code(e["end_image"]) << ", optional";
      if (e.value("end_needs_start", false)) o << "; it needs a first frame";
      o << " (" << rule(16) << ").\n";
    }
    if (e.contains("elements")) {
      const json& r = e["elements"];
      o << "- Elements (" << rule(18) << ", " << rule(19) << ", " << rule(20) << "):";
      if (r.contains("max")) o << " at most " << r["max"].dump();
      if (r.contains("warn_at_with_end_image")) o << ", a warning at " << r["warn_at_with_end_image"].dump() << " with a last frame";
      if (r.contains("max_with_video"))
        o << " elements + `image_urls` at most " << r["max_with_video"].dump() << " when an element has a video, " << r["max_without_video"].dump() << " otherwise";
      if (r.contains("source")) o << " (" << link_sources(r["source"], keys, where + ".elements") << ")";
      o << ".\n";
      if (r.contains("voice")) {
        const json& v = r["voice"];
        o << "- Voice: bound per element as `elements[i]." << v.value("field", "") << "` (" << rule(23) << "; "
          << link_sources(v.value("source", ""), keys, where + ".voice") << ").\n";
      }
    }
    if (e.contains("voice")) {
      const json& v = e["voice"];
      o << "- Voice: top-level " << code(v.value("field", "")) << ", at most " << v.value("max", 0) << ", spoken as `<<<voice_N>>>` ("
        << rule(23) << "; " << link_sources(v.value("source", ""), keys, where + ".voice") << ").\n";
    }
    if (e.contains("dropped"))
      for (auto& [field, why] : e["dropped"].items())
        o << "- " << code(field) << " is dropped with a warning: " << why.get<std::string>() << " ("
          << link_sources(e.value("dropped_source", ""), keys, where + ".dropped") << ").\n";
    const json* row = current_row(prices, id);
    if (!row) throw std::runtime_error(id + " has no current price in data/prices.json");
    o << "- **Price:** " << price_text(*row) << ". Source: " << row_source(*row, keys, where + " price") << ".\n";
    bool first = true;
    for (auto& other : prices["rows"]) {
      if (&other == row || !lists(other, id)) continue;
      if (first) o << "- Also published, not used:\n";
      first = false;
      o << "  - " << price_text(other) << " (" << row_source(other, keys, where + " price") << ")\n";
    }
  }
  return o.str();
}

}  // namespace kr::docs
