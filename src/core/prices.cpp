#include "core/prices.h"
#include "core/text.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace kr {
namespace data { extern const std::string_view prices_json; }

double round_usd(double v) { return std::round(v * 1e6) / 1e6; }

std::string format_usd(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "$%.3f", round_usd(v));
  std::string s = buf;
  // $0.840 → $0.84, but keep at least two decimals.
  while (s.size() > 4 && s.back() == '0' && s[s.size() - 3] != '.') s.pop_back();
  return s;
}

PriceTable::PriceTable(const PriceTable& o) : doc_(o.doc_) {}

PriceTable::PriceTable(json doc) : doc_(std::move(doc)) {
  if (!doc_.is_object() || !doc_.contains("rows") || !doc_["rows"].is_array())
    throw std::runtime_error("price table has no \"rows\" list");
  // Row shape is checked once here, so lookups below never read a missing key.
  std::size_t i = 0;
  for (auto& row : doc_["rows"]) {
    std::string where = "price table row " + std::to_string(++i);
    if (!row.is_object()) throw std::runtime_error(where + " is not an object");
    if (!row.contains("endpoints") || !row["endpoints"].is_array())
      throw std::runtime_error(where + " has no \"endpoints\" list");
    if (row.contains("current") && !row["current"].is_boolean())
      throw std::runtime_error(where + ": \"current\" must be true or false");
  }
}

const PriceTable& PriceTable::builtin() {
  static const PriceTable t(json::parse(data::prices_json));
  return t;
}

PriceTable PriceTable::from_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot read price file " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    return PriceTable(json::parse(ss.str()));
  } catch (const json::exception& e) {
    throw std::runtime_error("price file " + path + " is not valid JSON: " + json_error_text(e.what()));
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("price file " + path + ": " + e.what());
  }
}

const json* PriceTable::current(const std::string& id) const {
  for (auto& row : doc_["rows"]) {
    if (!row.value("current", false)) continue;
    for (auto& e : row["endpoints"]) if (e == id) return &row;
  }
  return nullptr;
}

Estimate PriceTable::estimate(const Endpoint& ep, const json& in) const {
  // A plan of 100,000 shots asks the same few questions again and again: the answer depends
  // only on the endpoint, the seconds and the audio mode, so it is computed once per triple.
  using namespace std::string_view_literals;
  if (!in.is_object()) return compute(ep, in);
  const json *a = nullptr, *voices = nullptr, *els = nullptr, *d = nullptr;
  for (auto& [k, v] : in.get_ref<const json::object_t&>()) {  // one pass: lengths differ, so few compares
    std::string_view key = k;
    if (key == "generate_audio"sv) a = &v;
    else if (key == "voice_ids"sv) voices = &v;
    else if (key == "elements"sv) els = &v;
    else if (key == "duration"sv) d = &v;
  }
  bool audio = a && a->is_boolean() && a->get<bool>();
  bool voice = voices && voices->is_array() && !voices->empty();
  if (els && els->is_array())
    for (auto& el : *els) voice = voice || (el.is_object() && el.contains("voice_id"));
  std::uint64_t seconds = 5;
  if (d) {
    const std::string* s = d->is_string() ? &d->get_ref<const std::string&>() : nullptr;
    if (!s || s->empty() || s->size() > 4 || s->find_first_not_of("0123456789") != std::string::npos) return compute(ep, in);
    seconds = std::stoul(*s);
  }
  std::uint64_t key = (reinterpret_cast<std::uintptr_t>(&ep) << 16) ^ (seconds << 2) ^ (audio ? 2u : 0u) ^ (voice ? 1u : 0u);
  {
    std::lock_guard lock(memo_mu_);
    auto it = memo_.find(key);
    if (it != memo_.end() && it->second.endpoint_id == ep.id) return it->second.estimate;
  }
  Estimate e = compute(ep, in);
  std::lock_guard lock(memo_mu_);
  memo_.insert_or_assign(key, Memo{ep.id, e});
  return e;
}

Estimate PriceTable::compute(const Endpoint& ep, const json& in) const {
  const json* row = current(ep.id);
  if (!row) throw std::runtime_error("no current price for " + ep.id + " in the price table");
  Estimate e;
  auto text = std::make_shared<EstimateText>();
  text->source = row->value("source", "");
  text->note = row->value("note", "");
  e.text = text;
  e.seconds = std::stoi(in.value("duration", std::string("5")));

  auto number = [&](const std::string& key) -> const json* {
    auto it = row->find(key);
    return it != row->end() && it->is_number() ? &*it : nullptr;
  };
  if (row->value("formula", "") == "first5") {  // C3: v2.5-turbo
    if (!number("first_5s") || !number("per_extra_second"))
      throw std::runtime_error("the \"first5\" price of " + ep.id + " needs numeric first_5s and per_extra_second");
    double first = *number("first_5s"), extra = *number("per_extra_second");
    e.audio = "off";
    e.rate = extra;
    e.usd = round_usd(first + extra * std::max(0, e.seconds - 5));
    text->formula = format_usd(first) + " for the first 5 s + " + std::to_string(std::max(0, e.seconds - 5)) + " s × " + format_usd(extra) + "/s";
    return e;
  }
  // C2: voice if a voice is bound and audio is on; else on/off by generate_audio (defaults filled).
  bool audio = in.value("generate_audio", false);
  bool voice = in.contains("voice_ids") && in["voice_ids"].is_array() && !in["voice_ids"].empty();
  if (in.contains("elements") && in["elements"].is_array())
    for (auto& el : in["elements"]) voice = voice || (el.is_object() && el.contains("voice_id"));
  e.audio = !audio ? "off" : (voice ? "voice" : "on");
  const json* rate = number(e.audio);
  if (!rate) throw std::runtime_error("no \"" + e.audio + "\" audio price for " + ep.id + " in the price table");
  e.rate = *rate;
  e.usd = round_usd(e.rate * e.seconds);  // C1
  text->formula = std::to_string(e.seconds) + " s × " + format_usd(e.rate) + "/s (audio " + e.audio + ")";
  return e;
}

}  // namespace kr
