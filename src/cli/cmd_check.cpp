// `klingrun check --endpoint ID FILE.json` and `klingrun prices`.
#include <fstream>
#include <iostream>
#include <iterator>

#include "cli/commands.h"
#include "core/prepare.h"
#include "core/text.h"

namespace kr::cli {

const PriceTable& price_table(const Args& args) {
  if (args.prices.empty()) return PriceTable::builtin();
  static PriceTable custom = PriceTable::from_file(args.prices);
  return custom;
}

int cmd_check(const Args& args) {
  if (args.endpoint.empty()) throw std::invalid_argument("check needs --endpoint ID (e.g. v3/pro/t2v)");
  if (args.positional.size() != 1) throw std::invalid_argument("check needs exactly one FILE.json (or - for stdin)");
  const std::string& file = args.positional[0];
  std::string text;
  if (file == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), {});
  } else {
    std::ifstream f(file);
    if (!f) { std::cerr << file << ": cannot read\n"; return 2; }
    text.assign(std::istreambuf_iterator<char>(f), {});
  }
  json input;
  try {
    input = json::parse(text);
  } catch (const json::exception& e) {
    std::cerr << (file == "-" ? "stdin" : file) << ": not valid JSON: " << json_error_text(e.what()) << "\n";
    return 1;
  }
  Request req;
  req.endpoint = args.endpoint;
  req.input = input;
  CoreContext ctx;
  ctx.prices = &price_table(args);
  Prepared p = prepare(req, ctx);
  for (auto& w : p.report.warnings) std::cerr << "warning: " << w.line() << "\n";
  if (!p.ok()) {
    for (auto& e : p.report.errors) std::cerr << e.line() << "\n";
    return 1;
  }
  if (args.json) {
    std::cout << json{{"endpoint", p.endpoint->id}, {"input", p.input}, {"cost_usd", p.cost->usd},
                      {"seconds", p.cost->seconds}, {"audio", p.cost->audio}}.dump(2) << "\n";
  } else {
    std::cout << "valid " << p.endpoint->id << ": " << format_usd(p.cost->usd) << " (" << p.cost->formula() << ")\n";
  }
  return 0;
}

int cmd_prices(const Args& args) {
  const PriceTable& t = price_table(args);
  if (args.json) { std::cout << t.doc().dump(2) << "\n"; return 0; }
  std::cout << "Current prices, USD per second of video (source in data/prices.json; --prices FILE replaces them)\n\n";
  std::printf("%-38s %7s %7s %7s\n", "endpoint", "off", "on", "voice");
  auto cell = [](const json& row, const char* k) {
    return row.contains(k) && row[k].is_number() ? format_usd(row[k].get<double>()) : std::string("—");
  };
  for (auto& ep : Catalog::builtin().all()) {
    const json* row = t.current(ep.id);
    std::string id = ep.id.substr(std::string("fal-ai/kling-video/").size());
    if (!row) { std::printf("%-38s %s\n", id.c_str(), "no current price"); continue; }
    if (row->value("formula", "") == "first5") {
      std::printf("%-38s %s first 5 s, then %s/s (no audio)\n", id.c_str(), format_usd((*row)["first_5s"]).c_str(),
                  format_usd((*row)["per_extra_second"]).c_str());
      continue;
    }
    std::printf("%-38s %7s %7s %7s\n", id.c_str(), cell(*row, "off").c_str(), cell(*row, "on").c_str(), cell(*row, "voice").c_str());
  }
  return 0;
}

}  // namespace kr::cli
