// normalize(): what a script wrote → exactly what fal receives (docs/validation.md#normalize).
#include "core_test_util.h"

using kr::json;

namespace {

json norm(const std::string& endpoint, json in, kr::Report* out = nullptr) {
  kr::Report r;
  json j = kr::normalize(krt::ep(endpoint), std::move(in), r);
  if (out) *out = r;
  return j;
}

}  // namespace

TEST_CASE("normalize: numeric duration becomes fal's string", "[normalize]") {
  kr::Report r;
  auto j = norm("v3/pro/t2v", {{"prompt", "a"}, {"duration", 7}}, &r);
  CHECK(j["duration"] == "7");
  CHECK(r.errors.empty());
  j = norm("v3/pro/t2v", {{"prompt", "a"}, {"duration", 10.0}}, &r);
  CHECK(j["duration"] == "10");
  j = norm("v2.6/pro/t2v", {{"prompt", "a"}, {"duration", 10}});
  CHECK(j["duration"] == "10");
  // Strings pass through untouched.
  j = norm("v3/pro/t2v", {{"prompt", "a"}, {"duration", "12"}});
  CHECK(j["duration"] == "12");
}

TEST_CASE("normalize: non-integer duration is an error naming the value", "[normalize]") {
  kr::Report r;
  auto j = norm("v3/pro/t2v", {{"prompt", "a"}, {"duration", 5.5}}, &r);
  KR_HAS_ERROR(r, "duration", "5.5 is not a whole number of seconds");
  CHECK(j["duration"].is_number());  // left for validate() to refuse

  kr::Report r2;
  norm("v3/pro/t2v", {{"multi_prompt", {{{"prompt", "a"}, {"duration", 3}}, {{"prompt", "b"}, {"duration", 2.25}}}}}, &r2);
  KR_HAS_ERROR(r2, "multi_prompt[1].duration", "2.25 is not a whole number of seconds");
  KR_NO_ERROR_AT(r2, "multi_prompt[0].duration");
}

TEST_CASE("normalize: shot durations become strings and default to \"5\"", "[normalize]") {
  auto j = norm("v3/pro/t2v", {{"multi_prompt", {{{"prompt", "a"}, {"duration", 3}}, {{"prompt", "b"}}, {{"prompt", "c"}, {"duration", "4"}}}}});
  REQUIRE(j["multi_prompt"].size() == 3);
  CHECK(j["multi_prompt"][0]["duration"] == "3");
  CHECK(j["multi_prompt"][1]["duration"] == "5");
  CHECK(j["multi_prompt"][2]["duration"] == "4");
  // duration absent → the sum of the shots.
  CHECK(j["duration"] == "12");
}

TEST_CASE("normalize: an explicit duration is kept even when the shots disagree", "[normalize]") {
  auto j = norm("v3/pro/t2v", {{"duration", 10}, {"multi_prompt", {{{"prompt", "a"}, {"duration", 3}}}}});
  CHECK(j["duration"] == "10");  // validate() names the mismatch (rule 8)
}

TEST_CASE("normalize: defaults are filled only where the endpoint has the field", "[normalize]") {
  SECTION("V3 T2V: duration, generate_audio=true, aspect_ratio; no shot_type without multi_prompt") {
    auto j = norm("v3/pro/t2v", {{"prompt", "a"}});
    CHECK(j == json{{"prompt", "a"}, {"duration", "5"}, {"generate_audio", true}, {"aspect_ratio", "16:9"}});
  }
  SECTION("V3 I2V: no aspect_ratio") {
    auto j = norm("v3/standard/i2v", {{"prompt", "a"}, {"start_image_url", "https://x/a.png"}});
    CHECK(j == json{{"prompt", "a"}, {"start_image_url", "https://x/a.png"}, {"duration", "5"}, {"generate_audio", true}});
  }
  SECTION("O3 T2V: generate_audio defaults to false") {
    auto j = norm("o3/pro/t2v", {{"prompt", "a"}});
    CHECK(j == json{{"prompt", "a"}, {"duration", "5"}, {"generate_audio", false}, {"aspect_ratio", "16:9"}});
  }
  SECTION("O3 I2V and R2V") {
    CHECK(norm("o3/standard/i2v", {{"prompt", "a"}, {"image_url", "u.png"}}) ==
          json{{"prompt", "a"}, {"image_url", "u.png"}, {"duration", "5"}, {"generate_audio", false}});
    CHECK(norm("o3/pro/r2v", {{"prompt", "a"}}) ==
          json{{"prompt", "a"}, {"duration", "5"}, {"generate_audio", false}, {"aspect_ratio", "16:9"}});
  }
  SECTION("v2.6: audio on") {
    CHECK(norm("v2.6/pro/t2v", {{"prompt", "a"}}) ==
          json{{"prompt", "a"}, {"duration", "5"}, {"generate_audio", true}, {"aspect_ratio", "16:9"}});
    CHECK(norm("v2.6/pro/i2v", {{"prompt", "a"}, {"start_image_url", "u.png"}}) ==
          json{{"prompt", "a"}, {"start_image_url", "u.png"}, {"duration", "5"}, {"generate_audio", true}});
  }
  SECTION("v2.5-turbo: no generate_audio at all") {
    CHECK(norm("v2.5-turbo/pro/t2v", {{"prompt", "a"}}) == json{{"prompt", "a"}, {"duration", "5"}, {"aspect_ratio", "16:9"}});
    CHECK(norm("v2.5-turbo/pro/i2v", {{"prompt", "a"}, {"image_url", "u.png"}}) ==
          json{{"prompt", "a"}, {"image_url", "u.png"}, {"duration", "5"}});
  }
  SECTION("negative_prompt and cfg_scale are not filled (fal applies its own defaults)") {
    auto j = norm("v3/pro/t2v", {{"prompt", "a"}});
    CHECK_FALSE(j.contains("negative_prompt"));
    CHECK_FALSE(j.contains("cfg_scale"));
  }
  SECTION("explicit values are never overwritten") {
    auto j = norm("v3/pro/t2v", {{"prompt", "a"}, {"generate_audio", false}, {"aspect_ratio", "9:16"}, {"duration", "8"}});
    CHECK(j["generate_audio"] == false);
    CHECK(j["aspect_ratio"] == "9:16");
    CHECK(j["duration"] == "8");
  }
}

TEST_CASE("normalize: shot_type is filled only with multi_prompt", "[normalize]") {
  for (auto id : {"v3/pro/t2v", "v3/pro/i2v", "o3/standard/t2v", "o3/pro/i2v", "o3/standard/r2v"}) {
    INFO(id);
    auto with = norm(id, {{"multi_prompt", {{{"prompt", "a"}}}}});
    CHECK(with["shot_type"] == "customize");
    auto without = norm(id, {{"prompt", "a"}});
    CHECK_FALSE(without.contains("shot_type"));
    auto empty_list = norm(id, {{"multi_prompt", json::array()}});
    CHECK_FALSE(empty_list.contains("shot_type"));
    auto kept = norm(id, {{"multi_prompt", {{{"prompt", "a"}}}}, {"shot_type", "intelligent"}});
    CHECK(kept["shot_type"] == "intelligent");
  }
}

TEST_CASE("normalize: nulls are dropped (top level and inside shots)", "[normalize]") {
  auto j = norm("v3/pro/i2v", {{"prompt", "a"},
                               {"start_image_url", "s.png"},
                               {"multi_prompt", nullptr},
                               {"elements", nullptr},
                               {"end_image_url", nullptr},
                               {"generate_audio", nullptr}});
  CHECK_FALSE(j.contains("multi_prompt"));
  CHECK_FALSE(j.contains("elements"));
  CHECK_FALSE(j.contains("end_image_url"));
  CHECK(j["generate_audio"] == true);  // null = absent, so the default is filled

  auto s = norm("v3/pro/t2v", {{"multi_prompt", {{{"prompt", "a"}, {"duration", nullptr}}}}});
  CHECK(s["multi_prompt"][0]["duration"] == "5");
}

TEST_CASE("normalize: aspect_ratio on image-to-video is dropped with a warning", "[normalize]") {
  for (auto id : {"v3/pro/i2v", "v3/standard/i2v", "o3/pro/i2v", "o3/standard/i2v", "v2.6/pro/i2v", "v2.5-turbo/pro/i2v"}) {
    INFO(id);
    kr::Report r;
    auto j = norm(id, {{"prompt", "a"}, {"aspect_ratio", "9:16"}}, &r);
    CHECK_FALSE(j.contains("aspect_ratio"));
    CHECK(r.errors.empty());
    KR_HAS_WARNING(r, "aspect_ratio", "start image's aspect ratio");
  }
  // Kept, without a warning, where it is a field.
  for (auto id : {"v3/pro/t2v", "o3/pro/t2v", "o3/pro/r2v", "v2.6/pro/t2v", "v2.5-turbo/pro/t2v"}) {
    INFO(id);
    kr::Report r;
    auto j = norm(id, {{"prompt", "a"}, {"aspect_ratio", "9:16"}}, &r);
    CHECK(j["aspect_ratio"] == "9:16");
    CHECK(r.warnings.empty());
  }
}

TEST_CASE("normalize: idempotent", "[normalize]") {
  std::vector<std::pair<std::string, json>> cases = {
      {"v3/pro/t2v", {{"prompt", "a"}}},
      {"v3/pro/t2v", {{"multi_prompt", {{{"prompt", "a"}, {"duration", 3}}, {{"prompt", "b"}}}}, {"negative_prompt", nullptr}}},
      {"v3/pro/i2v", {{"prompt", "a"}, {"start_image_url", "s.png"}, {"aspect_ratio", "1:1"}, {"duration", 6}}},
      {"o3/standard/r2v", {{"multi_prompt", {{{"prompt", "a"}, {"duration", 4}}}}, {"image_urls", {"a.png"}}}},
      {"v2.6/pro/i2v", {{"prompt", "a"}, {"start_image_url", "s.png"}, {"voice_ids", {"v1"}}}},
      {"v2.5-turbo/pro/i2v", {{"prompt", "a"}, {"image_url", "s.png"}, {"duration", 10}}},
  };
  for (auto& [id, in] : cases) {
    INFO(id << " " << in.dump());
    kr::Report r1, r2;
    json once = kr::normalize(krt::ep(id), in, r1);
    json twice = kr::normalize(krt::ep(id), once, r2);
    CHECK(once == twice);
    CHECK(r2.errors.empty());
    CHECK(r2.warnings.empty());  // nothing left to drop the second time
  }
}

TEST_CASE("normalize: a non-object input is returned unchanged", "[normalize]") {
  kr::Report r;
  json j = kr::normalize(krt::ep("v3/pro/t2v"), json::array({1, 2}), r);
  CHECK(j == json::array({1, 2}));
  CHECK(r.errors.empty());
}

TEST_CASE("normalize: a huge numeric duration is refused without undefined behaviour", "[normalize]") {
  kr::Report r;
  auto j = norm("v3/pro/t2v", {{"prompt", "a"}, {"duration", 1e20}}, &r);
  KR_HAS_ERROR(r, "duration", "is not a duration in seconds");
  CHECK(j["duration"].is_number());
  kr::Report r2;
  norm("v3/pro/t2v", {{"multi_prompt", {{{"prompt", "a"}, {"duration", -1e300}}}}}, &r2);
  KR_HAS_ERROR(r2, "multi_prompt[0].duration", "is not a duration in seconds");
}
