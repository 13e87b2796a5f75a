// docs/endpoints.md is generated from data/endpoints.json and data/prices.json; a change to the
// data without regenerating it fails here.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "reference.h"

namespace {
std::string slurp(const std::string& rel) {
  std::ifstream f(std::string(KR_SOURCE_DIR) + "/" + rel, std::ios::binary);
  REQUIRE(f);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
nlohmann::json data(const std::string& name) { return nlohmann::json::parse(slurp("data/" + name)); }
std::set<std::string> keys() { return kr::docs::source_anchors(slurp("docs/sources.md")); }
}  // namespace

TEST_CASE("the endpoint reference is what the data says today", "[docs]") {
  const std::string committed = slurp("docs/endpoints.md");
  const std::string fresh = kr::docs::render_endpoint_reference(data("endpoints.json"), data("prices.json"), keys());
  if (committed != fresh) {
    std::istringstream a(committed), b(fresh);
    std::string la, lb;
    int line = 0;
    while (std::getline(a, la) && std::getline(b, lb) && la == lb) ++line;
    FAIL("docs/endpoints.md is stale from line " << line + 1 << ": run `cmake --build build --target docs` and commit it\n  committed: "
                                                 << la << "\n  generated: " << lb);
  }
}

TEST_CASE("the reference has a section and the current price of every endpoint", "[docs]") {
  auto endpoints = data("endpoints.json");
  auto prices = data("prices.json");
  const std::string text = kr::docs::render_endpoint_reference(endpoints, prices, keys());
  for (auto& e : endpoints["endpoints"]) {
    std::string anchor = e["short"].get<std::string>();
    for (auto& c : anchor) if (c == '/' || c == '.') c = '-';
    INFO(e["short"]);
    CHECK(text.find("<a id=\"" + anchor + "\"></a>") != std::string::npos);
    CHECK(text.find("`" + e["id"].get<std::string>() + "`") != std::string::npos);
  }
  // A price change in the data changes the reference.
  prices["rows"][0]["on"] = 0.1686;
  CHECK(kr::docs::render_endpoint_reference(endpoints, prices, keys()).find("on $0.1686") != std::string::npos);
}

TEST_CASE("a source key the sources page does not define is refused", "[docs]") {
  auto endpoints = data("endpoints.json");
  endpoints["endpoints"][0]["source"] = "F-NOWHERE";
  CHECK_THROWS_WITH(kr::docs::render_endpoint_reference(endpoints, data("prices.json"), keys()),
                    Catch::Contains("F-NOWHERE is not defined in docs/sources.md"));
}

TEST_CASE("an endpoint without a current price is refused", "[docs]") {
  auto prices = data("prices.json");
  for (auto& row : prices["rows"]) row["current"] = false;
  CHECK_THROWS_WITH(kr::docs::render_endpoint_reference(data("endpoints.json"), prices, keys()), Catch::Contains("has no current price"));
}
