// The price table (data/prices.json, compiled in; `--prices FILE` replaces it) and estimate():
// cost rules C1–C4 of docs/prices.md#rules. Billing is per second of requested video, by audio mode.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/catalog.h"

namespace kr {

// The words of an estimate, shared by every job priced the same way (a plan holds 100,000).
struct EstimateText {
  std::string formula;      // "5 s × $0.168/s (audio on)"
  std::string source;       // where the price comes from
  std::string note;         // e.g. an UNCONFIRMED remark
};

struct Estimate {
  double usd = 0;
  double rate = 0;          // USD per second for this audio mode (v2.5-turbo: the per-extra-second rate)
  int seconds = 0;
  std::string audio;        // "off", "on" or "voice"
  std::shared_ptr<const EstimateText> text;

  const std::string& formula() const { return text ? text->formula : empty(); }
  const std::string& source() const { return text ? text->source : empty(); }
  const std::string& note() const { return text ? text->note : empty(); }

 private:
  static const std::string& empty() { static const std::string e; return e; }
};

class PriceTable {
 public:
  explicit PriceTable(json doc);
  PriceTable(const PriceTable& other);
  static const PriceTable& builtin();
  static PriceTable from_file(const std::string& path);  // throws std::runtime_error naming the file

  // The current row for an endpoint id; nullptr when there is none.
  const json* current(const std::string& endpoint_id) const;
  // Estimate of a normalized, valid input. Throws std::runtime_error when no price is known.
  Estimate estimate(const Endpoint& endpoint, const json& input) const;
  const json& doc() const { return doc_; }

 private:
  Estimate compute(const Endpoint& endpoint, const json& input) const;

  json doc_;
  mutable std::mutex memo_mu_;
  // The price depends only on the endpoint, the seconds and the audio mode.
  // Keyed by the endpoint's address, the seconds and the audio mode packed in one number; the
  // id kept beside the answer guards against another catalog's endpoint later living at the
  // same address.
  struct Memo {
    std::string endpoint_id;
    Estimate estimate;
  };
  mutable std::unordered_map<std::uint64_t, Memo> memo_;
};

// Rounds to a tenth of a cent's hundredth (1e-6) so sums of float rates print cleanly.
double round_usd(double v);
std::string format_usd(double v);

}  // namespace kr
