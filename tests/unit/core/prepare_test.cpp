// prepare(): endpoint resolved, elements rewritten, input normalized, validated and priced —
// the same object throughout. Also the small helpers of report.h and text.h.
#include "core/text.h"
#include "core_test_util.h"

using kr::json;

TEST_CASE("prepare: resolves the endpoint by any spelling, default v3/pro/t2v", "[prepare]") {
  for (auto id : {"fal-ai/kling-video/o3/standard/text-to-video", "o3/standard/text-to-video", "o3/standard/t2v"}) {
    INFO(id);
    auto p = krt::prep(id, {{"prompt", "a"}});
    REQUIRE(p.ok());
    CHECK(p.endpoint->id == "fal-ai/kling-video/o3/standard/text-to-video");
  }
  auto d = krt::prep("", {{"prompt", "a"}});
  REQUIRE(d.ok());
  CHECK(d.endpoint->short_id == "v3/pro/t2v");

  kr::CoreContext ctx;
  ctx.default_endpoint = "v2.6/pro/t2v";
  kr::Request r;
  r.input = {{"prompt", "a"}};
  auto q = kr::prepare(r, ctx);
  REQUIRE(q.ok());
  CHECK(q.endpoint->short_id == "v2.6/pro/t2v");
}

TEST_CASE("prepare: the input is normalized, and is exactly what gets priced", "[prepare]") {
  auto p = krt::prep("v3/standard/i2v", {{"multi_prompt", {{{"prompt", "a"}, {"duration", 4}}, {{"prompt", "b"}, {"duration", nullptr}}}},
                                         {"start_image_url", "https://cdn.test/s.jpg"},
                                         {"aspect_ratio", "16:9"},
                                         {"elements", nullptr}});
  INFO(krt::dump(p.report));
  REQUIRE(p.ok());
  CHECK(p.input == json{{"multi_prompt", {{{"prompt", "a"}, {"duration", "4"}}, {{"prompt", "b"}, {"duration", "5"}}}},
                        {"start_image_url", "https://cdn.test/s.jpg"},
                        {"duration", "9"},
                        {"generate_audio", true},
                        {"shot_type", "customize"}});
  CHECK(p.cost->seconds == 9);
  CHECK(p.cost->usd == Approx(0.126 * 9));
  KR_HAS_WARNING(p.report, "aspect_ratio", "dropped");

  SECTION("preparing the prepared input again changes nothing") {
    auto again = krt::prep("v3/standard/i2v", p.input);
    REQUIRE(again.ok());
    CHECK(again.input == p.input);
    CHECK(again.cost->usd == p.cost->usd);
    CHECK(again.report.warnings.empty());
  }
}

TEST_CASE("prepare: errors stop pricing, warnings do not", "[prepare]") {
  auto bad = krt::prep("v3/pro/t2v", {{"prompt", "a"}, {"duration", "20"}});
  CHECK_FALSE(bad.ok());
  CHECK_FALSE(bad.cost.has_value());
  REQUIRE(bad.endpoint != nullptr);
  KR_HAS_ERROR(bad.report, "duration", "\"20\" is above the 15 s maximum");

  auto warned = krt::prep("o3/pro/t2v", {{"multi_prompt", {{{"prompt", "a"}}}}, {"shot_type", "intelligent"}});
  CHECK(warned.ok());
  CHECK(warned.cost.has_value());
  CHECK(warned.report.warnings.size() == 1);

  auto normalize_error = krt::prep("v3/pro/t2v", {{"prompt", "a"}, {"duration", 6.5}});
  CHECK_FALSE(normalize_error.ok());
  KR_HAS_ERROR(normalize_error.report, "duration", "6.5 is not a whole number of seconds");

  auto not_object = krt::prep("v3/pro/t2v", json::array({"a"}));
  CHECK_FALSE(not_object.ok());
  KR_HAS_ERROR(not_object.report, "", "must be a table of fal fields");
}

TEST_CASE("prepare: an error normalize() already reported is not repeated by validate()", "[prepare]") {
  auto p = krt::prep("v3/pro/t2v", {{"prompt", "a"}, {"duration", 5.5}});
  CHECK_FALSE(p.ok());
  int at_duration = 0;
  for (auto& e : p.report.errors) at_duration += e.path == "duration";
  CHECK(at_duration == 1);
  KR_HAS_ERROR(p.report, "duration", "5.5 is not a whole number of seconds");
}

TEST_CASE("prepare: the consuming overload gives the same result", "[prepare]") {
  json in = {{"prompt", "a"}, {"duration", 10}, {"start_image_url", "https://cdn.test/s.png"}, {"aspect_ratio", "1:1"}};
  kr::Request r;
  r.endpoint = "v3/standard/i2v";
  r.input = in;
  auto a = kr::prepare(r);
  auto b = kr::prepare("v3/standard/i2v", json(in));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a.input == b.input);
  CHECK(a.cost->usd == b.cost->usd);
  CHECK(a.report.warnings.size() == b.report.warnings.size());
  CHECK(r.input == in);  // the Request overload leaves the request untouched
}

TEST_CASE("prepare: job metadata does not change the result", "[prepare]") {
  kr::Request a, b;
  a.endpoint = b.endpoint = "v3/pro/t2v";
  a.input = b.input = {{"prompt", "a lighthouse at dusk"}};
  b.name = "shot-7";
  b.take = 3;
  b.timeout_s = 120;
  b.origin = "script.lua:12";
  auto pa = kr::prepare(a), pb = kr::prepare(b);
  REQUIRE(pa.ok());
  REQUIRE(pb.ok());
  CHECK(pa.input == pb.input);
  CHECK(pa.cost->usd == pb.cost->usd);
}

TEST_CASE("report: ok, merge, has_error_at, line", "[report]") {
  kr::Report r;
  CHECK(r.ok());
  r.warn("aspect_ratio", "dropped");
  CHECK(r.ok());
  r.error("duration", "\"20\" is above the 15 s maximum");
  CHECK_FALSE(r.ok());
  CHECK(r.has_error_at("duration"));
  CHECK_FALSE(r.has_error_at("aspect_ratio"));  // warnings are not errors
  kr::Report s;
  s.error("", "whole request");
  s.merge(r);
  CHECK(s.errors.size() == 2);
  CHECK(s.warnings.size() == 1);
  CHECK(s.errors[0].line() == "whole request");
  CHECK(s.errors[1].line() == "duration: \"20\" is above the 15 s maximum");
}

TEST_CASE("text: utf8_length counts code points, quote shortens", "[text]") {
  CHECK(kr::utf8_length("") == 0);
  CHECK(kr::utf8_length("abc") == 3);
  CHECK(kr::utf8_length("é") == 1);
  CHECK(kr::utf8_length("日本語") == 3);
  CHECK(kr::utf8_length("🎬x") == 2);
  CHECK(kr::quote("") == "\"\"");
  CHECK(kr::quote("hi") == "\"hi\"");
  CHECK(kr::quote("abcdef", 3) == "\"abc…\"");
  CHECK(kr::quote("ééééé", 2) == "\"éé…\"");  // never cuts inside a character
  CHECK(kr::quote("abc", 3) == "\"abc\"");
}

TEST_CASE("text: json_error_text drops nlohmann's prefix", "[text]") {
  CHECK(kr::json_error_text("[json.exception.parse_error.101] parse error at line 1") == "parse error at line 1");
  CHECK(kr::json_error_text("plain message") == "plain message");
}
