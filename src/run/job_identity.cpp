// A job's identity: its key in the state store and the manifest, the hash that finds identical
// jobs in a run, and the file-safe form of its name.
#include "run/runner.h"

#include <cctype>
#include <cstdint>

#include "net/sha256.h"

namespace kr::run {

std::string request_key(const std::string& endpoint_id, const json& input, int take) {
  // nlohmann's json object is an ordered map: dump() is canonical (sorted keys, no spaces).
  std::string canonical = endpoint_id;
  canonical += '\n';
  canonical += input.dump();
  canonical += '\n';
  canonical += std::to_string(take);
  return net::sha256_hex(canonical);
}

namespace {

std::size_t mix(std::size_t h, std::size_t v) { return (h ^ v) * 0x100000001b3ULL + (h >> 29); }

// A walk over the value feeding one running hash (nlohmann's std::hash<json> combines a hash
// per node and costs twice as much on a plan's 100,000 requests). Only equal values must hash
// equal; equality is checked after.
std::size_t feed(std::size_t h, const json& v) {
  using T = json::value_t;
  h = mix(h, static_cast<std::size_t>(v.type()));
  switch (v.type()) {
    case T::string: return mix(h, std::hash<std::string_view>{}(v.get_ref<const std::string&>()));
    case T::boolean: return mix(h, v.get<bool>());
    case T::number_integer: return mix(h, static_cast<std::size_t>(v.get<std::int64_t>()));
    case T::number_unsigned: return mix(h, static_cast<std::size_t>(v.get<std::uint64_t>()));
    case T::number_float: return mix(h, std::hash<double>{}(v.get<double>()));
    case T::array:
      for (auto& e : v) h = feed(h, e);
      return mix(h, v.size());
    case T::object:
      for (auto& [k, e] : v.get_ref<const json::object_t&>()) h = feed(mix(h, std::hash<std::string_view>{}(k)), e);
      return mix(h, v.size());
    default: return h;
  }
}

}  // namespace

std::size_t identity_hash(const Endpoint& endpoint, const json& canonical, int take) {
  std::size_t h = mix(reinterpret_cast<std::uintptr_t>(&endpoint), static_cast<std::size_t>(take));
  return feed(h, canonical);
}

std::string safe_name(const std::string& name) {
  std::string out;
  for (unsigned char c : name) out += (std::isalnum(c) || c == '-' || c == '_' || c == '.') ? char(c) : '_';
  while (!out.empty() && out.front() == '.') out.erase(out.begin());
  return out.empty() ? "job" : out;
}

}  // namespace kr::run
