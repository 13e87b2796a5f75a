// Prices (data/prices.json) and estimate(): docs/prices.md and cost rules C1–C4 (docs/prices.md#rules).
#include <cmath>
#include <functional>
#include <map>
#include <stdexcept>

#include "core/prices.h"
#include "core_test_util.h"

using kr::json;
using kr::PriceTable;

namespace {

const PriceTable& table() { return PriceTable::builtin(); }

kr::Estimate est(const std::string& id, json in) {
  kr::Report r;
  json n = kr::normalize(krt::ep(id), std::move(in), r);
  REQUIRE(r.errors.empty());
  return table().estimate(krt::ep(id), n);
}

std::string write_file(const krt::TempDir& dir, const std::string& name, const std::string& text) {
  auto p = dir / name;
  std::ofstream(p) << text;
  return p.string();
}

std::string thrown(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(nothing thrown)";
}

}  // namespace

TEST_CASE("prices: every catalog endpoint has exactly one current row", "[prices]") {
  std::map<std::string, int> count;
  for (auto& row : table().doc()["rows"]) {
    if (!row.value("current", false)) continue;
    for (auto& e : row["endpoints"]) count[e.get<std::string>()]++;
  }
  for (auto& e : kr::Catalog::builtin().all()) {
    INFO(e.id);
    CHECK(count[e.id] == 1);
    const json* row = table().current(e.id);
    REQUIRE(row != nullptr);
    CHECK(row->value("current", false));
  }
  // ... and no current row prices an endpoint the catalog does not know.
  for (auto& [id, n] : count) {
    INFO(id);
    CHECK(kr::Catalog::builtin().find(id) != nullptr);
  }
  CHECK(table().current("fal-ai/kling-video/v3/4k/image-to-video") == nullptr);
}

TEST_CASE("prices: the current rates are the newest published", "[prices]") {
  struct Want { const char* id; double off, on; double voice; };  // voice < 0: none
  const Want want[] = {
      {"v3/pro/t2v", 0.112, 0.168, 0.196},      {"v3/pro/i2v", 0.112, 0.168, 0.196},
      {"v3/standard/t2v", 0.084, 0.126, 0.154}, {"v3/standard/i2v", 0.084, 0.126, 0.154},
      {"o3/pro/t2v", 0.112, 0.14, -1},          {"o3/pro/i2v", 0.112, 0.14, -1},
      {"o3/pro/r2v", 0.112, 0.14, -1},          {"o3/standard/t2v", 0.084, 0.112, -1},
      {"o3/standard/i2v", 0.084, 0.112, -1},    {"o3/standard/r2v", 0.084, 0.112, -1},
      {"v2.6/pro/t2v", 0.07, 0.14, 0.168},      {"v2.6/pro/i2v", 0.07, 0.14, 0.168},
  };
  for (auto& w : want) {
    INFO(w.id);
    const json* row = table().current(krt::ep(w.id).id);
    REQUIRE(row);
    CHECK((*row)["off"].get<double>() == Approx(w.off));
    CHECK((*row)["on"].get<double>() == Approx(w.on));
    if (w.voice < 0)
      CHECK((*row)["voice"].is_null());
    else
      CHECK((*row)["voice"].get<double>() == Approx(w.voice));
  }
  for (auto id : {"v2.5-turbo/pro/t2v", "v2.5-turbo/pro/i2v"}) {
    const json* row = table().current(krt::ep(id).id);
    REQUIRE(row);
    CHECK((*row)["formula"] == "first5");
    CHECK((*row)["first_5s"].get<double>() == Approx(0.35));
    CHECK((*row)["per_extra_second"].get<double>() == Approx(0.07));
  }
}

TEST_CASE("prices C1/C2: every current row, every audio mode, every duration = rate × seconds", "[prices]") {
  int checked = 0;
  for (auto& e : kr::Catalog::builtin().all()) {
    const json* row = table().current(e.id);
    REQUIRE(row);
    if (row->value("formula", "") == "first5") continue;
    for (std::string mode : {"off", "on", "voice"}) {
      if (!(*row)[mode].is_number()) continue;
      double rate = (*row)[mode];
      for (auto& d : e.field("duration")->at("enum")) {
        // estimate() on a normalized input; the voice mode is reached with a bound voice
        // (voice_ids or an element voice_id), whatever the endpoint.
        json in = {{"duration", d}, {"generate_audio", mode != "off"}};
        if (mode == "voice") in["voice_ids"] = {"v1"};
        INFO(e.short_id << " " << mode << " " << d.get<std::string>() << " s");
        auto x = table().estimate(e, in);
        int secs = std::stoi(d.get<std::string>());
        CHECK(x.audio == mode);
        CHECK(x.seconds == secs);
        CHECK(x.rate == Approx(rate));
        CHECK(x.usd == Approx(rate * secs).margin(1e-6));
        CHECK(x.usd == kr::round_usd(x.usd));
        CHECK_THAT(x.formula(), Catch::Contains(std::to_string(secs) + " s × " + kr::format_usd(rate) + "/s (audio " + mode + ")"));
        CHECK(x.source() == row->value("source", ""));
        ++checked;
      }
    }
  }
  // 4 V3 endpoints × 3 modes × 13 durations + 6 O3 × 2 × 13 + 2 v2.6 × 3 × 2
  CHECK(checked == 4 * 3 * 13 + 6 * 2 * 13 + 2 * 3 * 2);
}

TEST_CASE("prices: the worked examples of docs/prices.md", "[prices]") {
  SECTION("V3 Pro 5 s audio on = $0.84") {
    auto p = krt::prep("v3/pro/t2v", {{"prompt", "a"}});
    REQUIRE(p.ok());
    CHECK(p.cost->usd == Approx(0.84));
    CHECK(kr::format_usd(p.cost->usd) == "$0.84");
    CHECK(p.cost->audio == "on");
    CHECK(p.cost->formula() == "5 s × $0.168/s (audio on)");
  }
  SECTION("V3 Pro 5 s with voice = $0.98") {
    auto p = krt::prep("v3/pro/i2v", {{"prompt", "@Element1 says hi"},
                                      {"start_image_url", "https://cdn.test/s.png"},
                                      {"elements", {{{"video_url", "https://cdn.test/v.mp4"}, {"voice_id", "vx"}}}}});
    INFO(krt::dump(p.report));
    REQUIRE(p.ok());
    CHECK(p.cost->audio == "voice");
    CHECK(p.cost->usd == Approx(0.98));
    CHECK(kr::format_usd(p.cost->usd) == "$0.98");
  }
  SECTION("V3 Pro 15 s audio on = $2.52") {
    auto p = krt::prep("v3/pro/t2v", {{"prompt", "a"}, {"duration", 15}});
    REQUIRE(p.ok());
    CHECK(kr::format_usd(p.cost->usd) == "$2.52");
    auto shots = krt::prep("v3/pro/i2v", {{"multi_prompt", {{{"prompt", "a"}, {"duration", "5"}}, {{"prompt", "b"}, {"duration", "10"}}}},
                                          {"start_image_url", "https://cdn.test/s.png"}});
    REQUIRE(shots.ok());
    CHECK(kr::format_usd(shots.cost->usd) == "$2.52");  // billed on the total
  }
  SECTION("V3 Standard 5 s audio on + voice = $0.77") {
    auto p = krt::prep("v3/standard/i2v", {{"prompt", "@Element1"},
                                           {"start_image_url", "https://cdn.test/s.png"},
                                           {"elements", {{{"video_url", "https://cdn.test/v.mp4"}, {"voice_id", "vx"}}}}});
    REQUIRE(p.ok());
    CHECK(kr::format_usd(p.cost->usd) == "$0.77");
  }
  SECTION("C3: v2.5-turbo 5 s = $0.35, 10 s = $0.70") {
    for (auto id : {"v2.5-turbo/pro/t2v", "v2.5-turbo/pro/i2v"}) {
      INFO(id);
      json in = {{"prompt", "a"}};
      if (krt::ep(id).mode == "i2v") in["image_url"] = "https://cdn.test/s.png";
      auto p5 = krt::prep(id, in);
      REQUIRE(p5.ok());
      CHECK(p5.cost->usd == Approx(0.35));
      CHECK(p5.cost->audio == "off");
      CHECK(p5.cost->seconds == 5);
      CHECK(p5.cost->formula() == "$0.35 for the first 5 s + 0 s × $0.07/s");
      in["duration"] = "10";
      auto p10 = krt::prep(id, in);
      REQUIRE(p10.ok());
      CHECK(p10.cost->usd == Approx(0.70));
      CHECK(kr::format_usd(p10.cost->usd) == "$0.70");
      CHECK(p10.cost->rate == Approx(0.07));
      CHECK(p10.cost->formula() == "$0.35 for the first 5 s + 5 s × $0.07/s");
    }
  }
}

TEST_CASE("prices C2: the audio default decides the mode", "[prices]") {
  SECTION("O3 defaults to off, V3 and v2.6 to on") {
    auto o3 = est("o3/pro/t2v", {{"prompt", "a"}});
    CHECK(o3.audio == "off");
    CHECK(o3.usd == Approx(0.56));
    auto o3s = est("o3/standard/r2v", {{"prompt", "a"}});
    CHECK(o3s.audio == "off");
    CHECK(o3s.usd == Approx(0.42));
    auto v3 = est("v3/standard/t2v", {{"prompt", "a"}});
    CHECK(v3.audio == "on");
    CHECK(v3.usd == Approx(0.63));
    auto v26 = est("v2.6/pro/t2v", {{"prompt", "a"}});
    CHECK(v26.audio == "on");
    CHECK(v26.usd == Approx(0.70));
  }
  SECTION("explicit values override the default") {
    CHECK(est("o3/pro/i2v", {{"prompt", "a"}, {"image_url", "u.png"}, {"generate_audio", true}}).usd == Approx(0.70));
    auto v3off = est("v3/pro/t2v", {{"prompt", "a"}, {"generate_audio", false}});
    CHECK(v3off.audio == "off");
    CHECK(v3off.usd == Approx(0.56));
  }
  SECTION("v2.6 I2V with voice_ids and audio on is the voice tier") {
    auto p = krt::prep("v2.6/pro/i2v", {{"prompt", "<<<voice_1>>> hi"}, {"start_image_url", "https://cdn.test/s.png"}, {"voice_ids", {"v"}}, {"duration", "10"}});
    REQUIRE(p.ok());
    CHECK(p.cost->audio == "voice");
    CHECK(p.cost->usd == Approx(1.68));
    CHECK_THAT(p.cost->note(), Catch::Contains("UNCONFIRMED"));
  }
  SECTION("a voice with audio off is priced off (C2; validate refuses it anyway)") {
    auto x = table().estimate(krt::ep("v3/pro/i2v"),
                              {{"duration", "5"}, {"generate_audio", false}, {"elements", {{{"video_url", "v.mp4"}, {"voice_id", "x"}}}}});
    CHECK(x.audio == "off");
    CHECK(x.usd == Approx(0.56));
  }
  SECTION("an empty voice_ids list is no voice") {
    auto x = table().estimate(krt::ep("v2.6/pro/i2v"), {{"duration", "5"}, {"generate_audio", true}, {"voice_ids", json::array()}});
    CHECK(x.audio == "on");
  }
  SECTION("O3 has no voice tier: estimating one throws a clear error") {
    auto msg = thrown([] { table().estimate(krt::ep("o3/pro/r2v"), {{"duration", "5"}, {"generate_audio", true}, {"voice_ids", {"v"}}}); });
    CHECK_THAT(msg, Catch::Contains("no \"voice\" audio price for fal-ai/kling-video/o3/pro/reference-to-video"));
  }
}

TEST_CASE("prices: superseded rows are never used", "[prices]") {
  // The launch prices (0.224 / 0.336 / 0.392 for V3 Pro) are in the table but not current.
  bool launch_row = false;
  for (auto& row : table().doc()["rows"])
    if (!row.value("current", false) && row["on"] == 0.336) launch_row = true;
  CHECK(launch_row);
  CHECK(est("v3/pro/i2v", {{"prompt", "a"}, {"start_image_url", "s.png"}}).rate == Approx(0.168));
}

TEST_CASE("prices: from_file replaces the table", "[prices]") {
  krt::TempDir dir;
  auto path = write_file(dir, "prices.json", R"({"rows": [
    {"endpoints": ["fal-ai/kling-video/v3/pro/text-to-video"], "off": 1.0, "on": 2.0, "voice": 3.0, "current": true, "source": "test"},
    {"endpoints": ["fal-ai/kling-video/v3/pro/text-to-video"], "off": 9.0, "on": 9.0, "voice": 9.0, "current": false}
  ]})");
  PriceTable t = PriceTable::from_file(path);
  auto x = t.estimate(krt::ep("v3/pro/t2v"), {{"duration", "7"}, {"generate_audio", true}});
  CHECK(x.usd == Approx(14.0));
  CHECK(x.source() == "test");
  // Rows absent from the file are gone: no fallback to the built-in table.
  CHECK(t.current(krt::ep("v3/pro/i2v").id) == nullptr);
  auto msg = thrown([&] { t.estimate(krt::ep("v3/pro/i2v"), {{"duration", "5"}, {"generate_audio", true}}); });
  CHECK_THAT(msg, Catch::Contains("no current price for fal-ai/kling-video/v3/pro/image-to-video"));

  SECTION("prepare() uses the replacement and reports a missing price as an error") {
    kr::CoreContext ctx;
    ctx.prices = &t;
    kr::Request r;
    r.endpoint = "v3/pro/t2v";
    r.input = {{"prompt", "a"}, {"duration", 3}};
    auto p = kr::prepare(r, ctx);
    REQUIRE(p.ok());
    CHECK(p.cost->usd == Approx(6.0));
    r.endpoint = "o3/pro/t2v";
    auto q = kr::prepare(r, ctx);
    CHECK_FALSE(q.ok());
    KR_HAS_ERROR(q.report, "endpoint", "no current price for fal-ai/kling-video/o3/pro/text-to-video");
  }
}

TEST_CASE("prices: only the row marked current counts, wherever it is", "[prices]") {
  krt::TempDir dir;
  auto path = write_file(dir, "order.json", R"({"rows": [
    {"endpoints": ["fal-ai/kling-video/v2.6/pro/text-to-video"], "off": 5.0, "on": 5.0, "voice": 5.0, "current": false},
    {"endpoints": ["fal-ai/kling-video/v2.6/pro/text-to-video"], "off": 5.0, "on": 5.0, "voice": 5.0},
    {"endpoints": ["fal-ai/kling-video/v2.6/pro/text-to-video"], "off": 0.5, "on": 1.5, "voice": 2.5, "current": true},
    {"endpoints": ["fal-ai/kling-video/v2.5-turbo/pro/image-to-video"], "formula": "first5", "first_5s": 0.5,
     "per_extra_second": 0.07, "current": true}
  ]})");
  PriceTable t = PriceTable::from_file(path);
  CHECK(t.estimate(krt::ep("v2.6/pro/t2v"), {{"duration", "10"}, {"generate_audio", true}}).usd == Approx(15.0));
  SECTION("C3 uses first_5s and per_extra_second as written") {
    auto x5 = t.estimate(krt::ep("v2.5-turbo/pro/i2v"), {{"duration", "5"}});
    CHECK(x5.usd == Approx(0.5));
    auto x10 = t.estimate(krt::ep("v2.5-turbo/pro/i2v"), {{"duration", "10"}});
    CHECK(x10.usd == Approx(0.85));
    CHECK(x10.formula() == "$0.50 for the first 5 s + 5 s × $0.07/s");
  }
}

TEST_CASE("prices: a missing or malformed file gives a clear error naming it", "[prices]") {
  krt::TempDir dir;
  auto missing = (dir / "nope.json").string();
  CHECK_THAT(thrown([&] { PriceTable::from_file(missing); }), Catch::Contains("cannot read price file " + missing));

  auto bad = write_file(dir, "bad.json", "{\"rows\": [ {\"endpoints\": ");
  auto msg = thrown([&] { PriceTable::from_file(bad); });
  CHECK_THAT(msg, Catch::Contains("price file " + bad + " is not valid JSON"));

  for (auto text : {"{}", "[]", "{\"rows\": 3}"}) {
    INFO(text);
    auto p = write_file(dir, "norows.json", text);
    auto m = thrown([&] { PriceTable::from_file(p); });
    CHECK_THAT(m, Catch::Contains(p));
    CHECK_THAT(m, Catch::Contains("no \"rows\" list"));
  }

  SECTION("rows of the wrong shape are refused when the table is loaded") {
    for (auto text : {R"({"rows": [3]})", R"({"rows": [{"current": true, "on": 1}]})",
                      R"({"rows": [{"endpoints": "fal-ai/kling-video/v3/pro/text-to-video", "current": true}]})",
                      R"({"rows": [{"endpoints": ["x"], "current": "yes"}]})"}) {
      INFO(text);
      auto p = write_file(dir, "shape.json", text);
      auto m = thrown([&] { PriceTable::from_file(p); });
      CHECK_THAT(m, Catch::Contains(p));
      CHECK_THAT(m, Catch::Contains("row 1"));
    }
  }
  SECTION("a current row without the needed rate is an estimate error, not a crash") {
    auto p = write_file(dir, "norate.json",
                        R"({"rows": [{"endpoints": ["fal-ai/kling-video/v3/pro/text-to-video"], "off": 0.1, "current": true},
                                     {"endpoints": ["fal-ai/kling-video/v2.5-turbo/pro/text-to-video"], "formula": "first5", "current": true}]})");
    PriceTable t = PriceTable::from_file(p);
    CHECK(t.estimate(krt::ep("v3/pro/t2v"), {{"duration", "5"}, {"generate_audio", false}}).usd == Approx(0.5));
    CHECK_THAT(thrown([&] { t.estimate(krt::ep("v3/pro/t2v"), {{"duration", "5"}, {"generate_audio", true}}); }),
               Catch::Contains("no \"on\" audio price for fal-ai/kling-video/v3/pro/text-to-video"));
    CHECK_THAT(thrown([&] { t.estimate(krt::ep("v2.5-turbo/pro/t2v"), {{"duration", "5"}}); }),
               Catch::Contains("fal-ai/kling-video/v2.5-turbo/pro/text-to-video"));
  }
}

TEST_CASE("prices: PriceTable(json) refuses a document without rows", "[prices]") {
  CHECK_THROWS_WITH(PriceTable(json::object()), Catch::Contains("no \"rows\" list"));
  CHECK_THROWS_WITH(PriceTable(json::array()), Catch::Contains("no \"rows\" list"));
  CHECK_NOTHROW(PriceTable(json{{"rows", json::array()}}));
}

TEST_CASE("prices: format_usd and round_usd", "[prices]") {
  CHECK(kr::format_usd(0.84) == "$0.84");
  CHECK(kr::format_usd(0.98) == "$0.98");
  CHECK(kr::format_usd(2.52) == "$2.52");
  CHECK(kr::format_usd(0.77) == "$0.77");
  CHECK(kr::format_usd(0.7) == "$0.70");
  CHECK(kr::format_usd(0.35) == "$0.35");
  CHECK(kr::format_usd(0.168) == "$0.168");
  CHECK(kr::format_usd(0.14) == "$0.14");
  CHECK(kr::format_usd(1) == "$1.00");
  CHECK(kr::format_usd(0) == "$0.00");
  CHECK(kr::format_usd(12.5) == "$12.50");
  CHECK(kr::format_usd(123.456) == "$123.456");
  CHECK(kr::format_usd(0.1234) == "$0.123");
  CHECK(kr::format_usd(0.1 + 0.2) == "$0.30");
  CHECK(kr::format_usd(0.168 * 5) == "$0.84");
  CHECK(kr::round_usd(0.1 + 0.2) == 0.3);
  CHECK(kr::round_usd(0.168 * 15) == 2.52);
  CHECK(kr::round_usd(1.0000004) == 1.0);
  CHECK(kr::round_usd(1.0000006) == 1.000001);
}
