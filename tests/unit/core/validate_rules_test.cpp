// docs/validation.md, rules 1–23, both ways: a valid request has no error at the rule's path, and
// each violation is reported at the right path with a message naming the value or the rule.
// Rule 24 (media) is in media_test.cpp.
#include <string>

#include "core_test_util.h"

using kr::json;
using krt::check;

namespace {

const char* kImg = "https://cdn.test/a.png";
const char* kImg2 = "https://cdn.test/b.jpg";
const char* kVid = "https://cdn.test/v.mp4";

// A minimal valid input for every endpoint.
json base(const std::string& id) {
  auto& e = krt::ep(id);
  json in = {{"prompt", "a red fox runs through snow"}};
  std::string start = e.start_image;
  if (!start.empty()) in[start] = kImg;
  return in;
}

const std::vector<std::string> kAll = {"v3/pro/t2v", "v3/standard/t2v", "v3/pro/i2v", "v3/standard/i2v",
                                       "o3/pro/t2v", "o3/standard/t2v", "o3/pro/i2v", "o3/standard/i2v",
                                       "o3/pro/r2v", "o3/standard/r2v", "v2.6/pro/t2v", "v2.6/pro/i2v",
                                       "v2.5-turbo/pro/t2v", "v2.5-turbo/pro/i2v"};
const std::vector<std::string> kMulti = {"v3/pro/t2v", "v3/standard/t2v", "v3/pro/i2v", "v3/standard/i2v", "o3/pro/t2v",
                                         "o3/standard/t2v", "o3/pro/i2v", "o3/standard/i2v", "o3/pro/r2v", "o3/standard/r2v"};
const std::vector<std::string> kOld = {"v2.6/pro/t2v", "v2.6/pro/i2v", "v2.5-turbo/pro/t2v", "v2.5-turbo/pro/i2v"};

json with(json in, const json& extra) {
  for (auto& [k, v] : extra.items()) in[k] = v;
  return in;
}
json without(json in, const std::string& key) {
  in.erase(key);
  return in;
}

json shots(std::initializer_list<std::pair<const char*, const char*>> s) {
  json a = json::array();
  for (auto& [p, d] : s) {
    json shot = {{"prompt", p}};
    if (d) shot["duration"] = d;
    a.push_back(shot);
  }
  return a;
}

json image_el(int refs = 1) {
  json r = json::array();
  for (int i = 0; i < refs; ++i) r.push_back("https://cdn.test/ref" + std::to_string(i) + ".png");
  return {{"frontal_image_url", "https://cdn.test/front.png"}, {"reference_image_urls", r}};
}
json video_el() { return {{"video_url", kVid}}; }

// "@Element1 @Element2 ..." so no element is left unreferenced.
std::string refs_prompt(int n) {
  std::string p = "scene with";
  for (int i = 1; i <= n; ++i) p += " @Element" + std::to_string(i);
  return p;
}

bool message_anywhere(const kr::Report& r, const std::string& sub) {
  for (auto& e : r.errors)
    if (e.message.find(sub) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("baseline: the minimal input of every endpoint is valid and priced", "[validate]") {
  for (auto& id : kAll) {
    INFO(id);
    auto p = krt::prep(id, base(id));
    INFO(krt::dump(p.report));
    CHECK(p.ok());
    CHECK(p.report.warnings.empty());
  }
}

TEST_CASE("rule 1: unknown fields are errors", "[validate][rule1]") {
  for (auto& id : kAll) {
    INFO(id);
    auto c = check(id, with(base(id), {{"seed", 42}}));
    KR_HAS_ERROR(c.report, "seed", "is not a field of " + krt::ep(id).short_id);
    KR_HAS_ERROR(c.report, "seed", "no seed field");
    auto ok = check(id, base(id));
    KR_OK(ok.report);
  }
  SECTION("hints for the usual mix-ups") {
    auto c = check("v3/pro/t2v", with(base("v3/pro/t2v"), {{"multi_shot_prompts", json::array()}}));
    KR_HAS_ERROR(c.report, "multi_shot_prompts", "use multi_prompt");
    c = check("v3/pro/t2v", with(base("v3/pro/t2v"), {{"character_orientation", "image"}}));
    KR_HAS_ERROR(c.report, "character_orientation", "motion-control");
    c = check("v3/pro/i2v", with(base("v3/pro/i2v"), {{"image_url", kImg}}));
    KR_HAS_ERROR(c.report, "image_url", "calls its first frame start_image_url");
    c = check("o3/pro/i2v", with(base("o3/pro/i2v"), {{"start_image_url", kImg}}));
    KR_HAS_ERROR(c.report, "start_image_url", "calls its first frame image_url");
    c = check("o3/pro/t2v", with(base("o3/pro/t2v"), {{"voice_ids", {"v"}}}));
    KR_HAS_ERROR(c.report, "voice_ids", "is not a field of o3/pro/t2v");
    c = check("v2.6/pro/t2v", with(base("v2.6/pro/t2v"), {{"multi_prompt", shots({{"a", "5"}})}}));
    KR_HAS_ERROR(c.report, "multi_prompt", "is not a field of v2.6/pro/t2v");
  }
  SECTION("exception: aspect_ratio on image-to-video is dropped with a warning, not an error") {
    for (auto id : {"v3/pro/i2v", "v3/standard/i2v", "o3/pro/i2v", "o3/standard/i2v", "v2.6/pro/i2v", "v2.5-turbo/pro/i2v"}) {
      INFO(id);
      auto p = krt::prep(id, with(base(id), {{"aspect_ratio", "16:9"}}));
      CHECK(p.ok());
      KR_NO_ERROR_AT(p.report, "aspect_ratio");
      KR_HAS_WARNING(p.report, "aspect_ratio", "dropped");
      CHECK_FALSE(p.input.contains("aspect_ratio"));
    }
  }
}

TEST_CASE("rule 2: duration is a string from the endpoint's enum", "[validate][rule2]") {
  SECTION("V3/O3: \"3\"…\"15\"") {
    for (auto& id : kMulti) {
      INFO(id);
      for (auto d : {"3", "9", "15"}) KR_NO_ERROR_AT(check(id, with(base(id), {{"duration", d}})).report, "duration");
      KR_HAS_ERROR(check(id, with(base(id), {{"duration", "2"}})).report, "duration", "\"2\" is below the 3 s minimum");
      KR_HAS_ERROR(check(id, with(base(id), {{"duration", "16"}})).report, "duration", "\"16\" is above the 15 s maximum");
      KR_HAS_ERROR(check(id, with(base(id), {{"duration", "five"}})).report, "duration", "\"five\" is not one of \"3\"");
      KR_HAS_ERROR(check(id, with(base(id), {{"duration", ""}})).report, "duration", "is not one of");
    }
  }
  SECTION("v2.6 / v2.5-turbo: \"5\" or \"10\"") {
    for (auto& id : kOld) {
      INFO(id);
      for (auto d : {"5", "10"}) KR_NO_ERROR_AT(check(id, with(base(id), {{"duration", d}})).report, "duration");
      for (auto d : {"3", "7", "15"})
        KR_HAS_ERROR(check(id, with(base(id), {{"duration", d}})).report, "duration",
                     std::string("\"") + d + "\" is not one of \"5\", \"10\"");
    }
  }
  SECTION("a number (not normalized) or another type is refused by validate()") {
    auto r = kr::validate(krt::ep("v3/pro/t2v"), {{"prompt", "a"}, {"duration", 5}});
    KR_HAS_ERROR(r, "duration", "5 must be a whole number of seconds written as a string");
    r = kr::validate(krt::ep("v2.6/pro/t2v"), {{"prompt", "a"}, {"duration", true}});
    KR_HAS_ERROR(r, "duration", "must be a whole number of seconds");
  }
  SECTION("numbers are accepted through normalize, and the default is \"5\"") {
    auto c = check("v3/pro/t2v", with(base("v3/pro/t2v"), {{"duration", 12}}));
    KR_OK(c.report);
    CHECK(c.input["duration"] == "12");
    c = check("v2.5-turbo/pro/t2v", base("v2.5-turbo/pro/t2v"));
    CHECK(c.input["duration"] == "5");
    c = check("v2.6/pro/t2v", with(base("v2.6/pro/t2v"), {{"duration", 7}}));
    KR_HAS_ERROR(c.report, "duration", "\"7\" is not one of \"5\", \"10\"");
  }
}

TEST_CASE("rule 3: V3/O3 take exactly one of prompt and multi_prompt", "[validate][rule3]") {
  for (auto& id : kMulti) {
    INFO(id);
    json no_prompt = without(base(id), "prompt");
    DYNAMIC_SECTION("prompt alone and multi_prompt alone are valid" << " @ " << id) {
      KR_OK(check(id, base(id)).report);
      auto c = check(id, with(no_prompt, {{"multi_prompt", shots({{"a", "3"}, {"b", "3"}})}}));
      KR_OK(c.report);
      CHECK(c.input["duration"] == "6");
    }
    DYNAMIC_SECTION("both" << " @ " << id) {
      auto c = check(id, with(base(id), {{"multi_prompt", shots({{"a", "5"}})}}));
      KR_HAS_ERROR(c.report, "multi_prompt", "prompt and multi_prompt were both given");
    }
    DYNAMIC_SECTION("neither" << " @ " << id) {
      auto c = check(id, no_prompt);
      KR_HAS_ERROR(c.report, "prompt", "neither prompt nor multi_prompt was given; " + krt::ep(id).short_id);
    }
    DYNAMIC_SECTION("empty prompt" << " @ " << id) {
      auto c = check(id, with(base(id), {{"prompt", ""}}));
      KR_HAS_ERROR(c.report, "prompt", "is empty");
    }
    DYNAMIC_SECTION("empty multi_prompt list" << " @ " << id) {
      auto c = check(id, with(no_prompt, {{"multi_prompt", json::array()}}));
      KR_HAS_ERROR(c.report, "multi_prompt", "is an empty list");
    }
    DYNAMIC_SECTION("multi_prompt not a list" << " @ " << id) {
      auto c = check(id, with(no_prompt, {{"multi_prompt", "shot one"}}));
      KR_HAS_ERROR(c.report, "multi_prompt", "must be a list, got a string");
    }
  }
}

TEST_CASE("rule 4: v2.6 and v2.5-turbo require a non-empty prompt", "[validate][rule4]") {
  for (auto& id : kOld) {
    INFO(id);
    KR_NO_ERROR_AT(check(id, base(id)).report, "prompt");
    KR_HAS_ERROR(check(id, without(base(id), "prompt")).report, "prompt", "is required on " + krt::ep(id).short_id);
    KR_HAS_ERROR(check(id, with(base(id), {{"prompt", ""}})).report, "prompt", "is empty");
    KR_HAS_ERROR(check(id, with(base(id), {{"prompt", 12}})).report, "prompt", "must be a string, got a number");
  }
}

TEST_CASE("rule 5: prompt and negative_prompt are at most 2500 characters", "[validate][rule5]") {
  std::string ok(2500, 'x'), long_(2501, 'x');
  for (auto& id : kAll) {
    INFO(id);
    KR_NO_ERROR_AT(check(id, with(base(id), {{"prompt", ok}})).report, "prompt");
    KR_HAS_ERROR(check(id, with(base(id), {{"prompt", long_}})).report, "prompt", "2501 characters is above the 2500-character limit");
  }
  SECTION("code points, not bytes") {
    std::string e2500, e2501;
    for (int i = 0; i < 2500; ++i) e2500 += "é";
    e2501 = e2500 + "é";
    KR_NO_ERROR_AT(check("v3/pro/t2v", {{"prompt", e2500}}).report, "prompt");
    KR_HAS_ERROR(check("v3/pro/t2v", {{"prompt", e2501}}).report, "prompt", "2501 characters");
  }
  SECTION("negative_prompt") {
    for (auto id : {"v3/pro/t2v", "v3/standard/i2v", "v2.6/pro/t2v", "v2.6/pro/i2v", "v2.5-turbo/pro/t2v", "v2.5-turbo/pro/i2v"}) {
      INFO(id);
      KR_NO_ERROR_AT(check(id, with(base(id), {{"negative_prompt", ok}})).report, "negative_prompt");
      KR_HAS_ERROR(check(id, with(base(id), {{"negative_prompt", long_}})).report, "negative_prompt", "2501 characters is above the 2500-character limit");
    }
  }
}

TEST_CASE("rule 6: each shot is {prompt, duration}", "[validate][rule6]") {
  for (auto& id : kMulti) {
    INFO(id);
    json in = without(base(id), "prompt");
    DYNAMIC_SECTION("valid shots" << " @ " << id) {
      auto c = check(id, with(in, {{"multi_prompt", shots({{"one", "3"}, {"two", nullptr}, {"three", "7"}})}}));
      KR_OK(c.report);
      CHECK(c.input["multi_prompt"][1]["duration"] == "5");
    }
    DYNAMIC_SECTION("a shot that is not a table" << " @ " << id) {
      auto c = check(id, with(in, {{"multi_prompt", {"just text"}}}));
      KR_HAS_ERROR(c.report, "multi_prompt[0]", "must be a table");
    }
    DYNAMIC_SECTION("an unknown key in a shot" << " @ " << id) {
      auto c = check(id, with(in, {{"multi_prompt", {{{"prompt", "a"}, {"duration", "5"}, {"camera", "pan"}}}}}));
      KR_HAS_ERROR(c.report, "multi_prompt[0].camera", "is not a field of a shot");
    }
    DYNAMIC_SECTION("missing, non-string or empty shot prompt" << " @ " << id) {
      auto c = check(id, with(in, {{"duration", "15"},
                                   {"multi_prompt", {{{"prompt", "a"}, {"duration", "5"}},
                                                     {{"duration", "5"}},
                                                     {{"prompt", 3}, {"duration", "5"}}}}}));
      KR_NO_ERROR_AT(c.report, "multi_prompt[0].prompt");
      KR_HAS_ERROR(c.report, "multi_prompt[1].prompt", "is required");
      KR_HAS_ERROR(c.report, "multi_prompt[2].prompt", "must be a string, got a number");
      c = check(id, with(in, {{"multi_prompt", {{{"prompt", ""}}}}}));
      KR_HAS_ERROR(c.report, "multi_prompt[0].prompt", "is empty");
    }
    DYNAMIC_SECTION("shot duration out of the \"3\"…\"15\" enum" << " @ " << id) {
      auto c = check(id, with(in, {{"multi_prompt", shots({{"a", "5"}, {"b", "5"}, {"c", "2"}})}}));
      KR_HAS_ERROR(c.report, "multi_prompt[2].duration", "\"2\" is below the 3 s minimum per shot");
      KR_NO_ERROR_AT(c.report, "multi_prompt[0].duration");
      c = check(id, with(in, {{"multi_prompt", shots({{"a", "16"}})}}));
      KR_HAS_ERROR(c.report, "multi_prompt[0].duration", "\"16\" is above the 15 s maximum per shot");
      c = check(id, with(in, {{"multi_prompt", shots({{"a", "x"}})}}));
      KR_HAS_ERROR(c.report, "multi_prompt[0].duration", "\"x\" is not one of");
      c = check(id, with(in, {{"multi_prompt", {{{"prompt", "a"}, {"duration", true}}}}}));
      KR_HAS_ERROR(c.report, "multi_prompt[0].duration", "must be a whole number of seconds");
    }
  }
}

TEST_CASE("rule 7: a shot prompt is at most 512 characters", "[validate][rule7]") {
  for (auto& id : kMulti) {
    INFO(id);
    json in = without(base(id), "prompt");
    auto c = check(id, with(in, {{"multi_prompt", shots({{"a", "5"}, {std::string(512, 'y').c_str(), "5"}})}}));
    KR_NO_ERROR_AT(c.report, "multi_prompt[1].prompt");
    std::string long_(513, 'y');
    c = check(id, with(in, {{"multi_prompt", {{{"prompt", "a"}}, {{"prompt", long_}}}}}));
    KR_HAS_ERROR(c.report, "multi_prompt[1].prompt", "513 characters is above the 512-character limit per shot");
  }
}

TEST_CASE("rule 8: shot durations add up to duration", "[validate][rule8]") {
  for (auto& id : kMulti) {
    INFO(id);
    json in = without(base(id), "prompt");
    DYNAMIC_SECTION("equal totals are valid (explicit or defaulted)" << " @ " << id) {
      KR_OK(check(id, with(in, {{"duration", "10"}, {"multi_prompt", shots({{"a", "5"}, {"b", "5"}})}})).report);
      KR_OK(check(id, with(in, {{"duration", "10"}, {"multi_prompt", shots({{"a", nullptr}, {"b", nullptr}})}})).report);
      KR_OK(check(id, with(in, {{"multi_prompt", shots({{"a", "4"}, {"b", "3"}, {"c", "6"}})}})).report);
    }
    DYNAMIC_SECTION("a mismatch names both totals" << " @ " << id) {
      auto c = check(id, with(in, {{"duration", "10"}, {"multi_prompt", shots({{"a", "3"}, {"b", "3"}})}}));
      KR_HAS_ERROR(c.report, "multi_prompt", "shot durations add up to 6 s but duration is \"10\"");
      c = check(id, with(in, {{"duration", "5"}, {"multi_prompt", shots({{"a", "4"}, {"b", nullptr}})}}));
      KR_HAS_ERROR(c.report, "multi_prompt", "add up to 9 s but duration is \"5\"");
    }
  }
  SECTION("through prepare(): billed on the total") {
    auto p = krt::prep("v3/pro/t2v", {{"multi_prompt", shots({{"a", "5"}, {"b", "5"}, {"c", "5"}})}});
    REQUIRE(p.ok());
    CHECK(p.input["duration"] == "15");
    CHECK(p.cost->seconds == 15);
  }
}

TEST_CASE("rule 9: at most 6 shots", "[validate][rule9]") {
  for (auto& id : kMulti) {
    INFO(id);
    json in = without(base(id), "prompt");
    json six = json::array(), seven = json::array();
    for (int i = 0; i < 6; ++i) six.push_back({{"prompt", "s"}, {"duration", "3"}});
    seven = six;
    seven.push_back({{"prompt", "s"}, {"duration", "3"}});
    auto c6 = check(id, with(in, {{"multi_prompt", six}}));
    CHECK_FALSE(message_anywhere(c6.report, "shots is above the maximum"));
    auto c7 = check(id, with(in, {{"multi_prompt", seven}}));
    KR_HAS_ERROR(c7.report, "multi_prompt", "7 shots is above the maximum of 6");
  }
}

TEST_CASE("rule 10: shot_type", "[validate][rule10]") {
  auto multi = [](const std::string& id, const char* shot_type) {
    json in = with(without(base(id), "prompt"), {{"multi_prompt", shots({{"a", "5"}})}});
    if (shot_type) in["shot_type"] = shot_type;
    return check(id, in);
  };
  SECTION("V3 T2V: customize and intelligent, no warning") {
    for (auto id : {"v3/pro/t2v", "v3/standard/t2v"}) {
      INFO(id);
      for (auto v : {"customize", "intelligent"}) {
        auto c = multi(id, v);
        KR_OK(c.report);
        KR_NO_WARNING_AT(c.report, "shot_type");
      }
    }
  }
  SECTION("V3 I2V and O3: intelligent is a warning, not an error") {
    for (auto id : {"v3/pro/i2v", "v3/standard/i2v", "o3/pro/t2v", "o3/standard/t2v", "o3/pro/i2v", "o3/standard/i2v",
                    "o3/pro/r2v", "o3/standard/r2v"}) {
      INFO(id);
      auto c = multi(id, "intelligent");
      KR_OK(c.report);
      KR_HAS_WARNING(c.report, "shot_type", "documented only for V3 text-to-video");
      auto ok = multi(id, "customize");
      KR_OK(ok.report);
      KR_NO_WARNING_AT(ok.report, "shot_type");
    }
  }
  SECTION("the upstream spelling intelligence is an error with a hint; others are errors") {
    for (auto& id : kMulti) {
      INFO(id);
      auto c = multi(id, "intelligence");
      KR_HAS_ERROR(c.report, "shot_type", "\"intelligence\" is not one of \"customize\", \"intelligent\"");
      KR_HAS_ERROR(c.report, "shot_type", "fal spells it \"intelligent\"");
      KR_HAS_ERROR(multi(id, "auto").report, "shot_type", "\"auto\" is not one of");
    }
  }
  SECTION("default customize satisfies \"required with multi_prompt\"") {
    auto c = multi("v3/pro/i2v", nullptr);
    KR_OK(c.report);
    CHECK(c.input["shot_type"] == "customize");
  }
}

TEST_CASE("rule 11: aspect_ratio is 16:9, 9:16 or 1:1", "[validate][rule11]") {
  for (auto id : {"v3/pro/t2v", "v3/standard/t2v", "o3/pro/t2v", "o3/standard/t2v", "o3/pro/r2v", "o3/standard/r2v",
                  "v2.6/pro/t2v", "v2.5-turbo/pro/t2v"}) {
    INFO(id);
    for (auto v : {"16:9", "9:16", "1:1"}) {
      auto c = check(id, with(base(id), {{"aspect_ratio", v}}));
      KR_OK(c.report);
      CHECK(c.input["aspect_ratio"] == v);
    }
    KR_HAS_ERROR(check(id, with(base(id), {{"aspect_ratio", "4:3"}})).report, "aspect_ratio",
                 "\"4:3\" is not one of \"16:9\", \"9:16\", \"1:1\"");
    KR_HAS_ERROR(check(id, with(base(id), {{"aspect_ratio", 1.77}})).report, "aspect_ratio", "must be a string");
  }
}

TEST_CASE("rule 12: cfg_scale is a number in [0, 1] where it exists", "[validate][rule12]") {
  for (auto id : {"v3/pro/t2v", "v3/standard/t2v", "v3/pro/i2v", "v3/standard/i2v", "v2.6/pro/t2v", "v2.5-turbo/pro/t2v",
                  "v2.5-turbo/pro/i2v"}) {
    INFO(id);
    for (double v : {0.0, 0.5, 1.0}) KR_OK(check(id, with(base(id), {{"cfg_scale", v}})).report);
    KR_OK(check(id, with(base(id), {{"cfg_scale", 1}})).report);  // an integer is a number
    KR_HAS_ERROR(check(id, with(base(id), {{"cfg_scale", 1.5}})).report, "cfg_scale", "1.5 is outside the range 0 … 1");
    KR_HAS_ERROR(check(id, with(base(id), {{"cfg_scale", -0.1}})).report, "cfg_scale", "-0.1 is outside the range");
    KR_HAS_ERROR(check(id, with(base(id), {{"cfg_scale", "0.5"}})).report, "cfg_scale", "must be a number, got a string");
    KR_HAS_ERROR(check(id, with(base(id), {{"cfg_scale", true}})).report, "cfg_scale", "must be a number, got a boolean");
  }
  for (auto id : {"o3/pro/t2v", "o3/standard/t2v", "o3/pro/i2v", "o3/standard/i2v", "o3/pro/r2v", "o3/standard/r2v", "v2.6/pro/i2v"}) {
    INFO(id);
    KR_HAS_ERROR(check(id, with(base(id), {{"cfg_scale", 0.5}})).report, "cfg_scale", "is not a field of");
  }
}

TEST_CASE("rule 13: negative_prompt on V3, v2.6 and v2.5-turbo, not on O3", "[validate][rule13]") {
  for (auto& id : kAll) {
    INFO(id);
    auto c = check(id, with(base(id), {{"negative_prompt", "blur"}}));
    if (krt::ep(id).family == "o3")
      KR_HAS_ERROR(c.report, "negative_prompt", "is not a field of " + krt::ep(id).short_id);
    else
      KR_OK(c.report);
  }
}

TEST_CASE("rule 14: generate_audio is a boolean on V3, O3 and v2.6, absent on v2.5-turbo", "[validate][rule14]") {
  for (auto& id : kAll) {
    INFO(id);
    auto& e = krt::ep(id);
    if (e.family == "v2.5-turbo") {
      KR_HAS_ERROR(check(id, with(base(id), {{"generate_audio", false}})).report, "generate_audio", "is not a field of");
      CHECK_FALSE(check(id, base(id)).input.contains("generate_audio"));
      continue;
    }
    KR_OK(check(id, with(base(id), {{"generate_audio", false}})).report);
    KR_OK(check(id, with(base(id), {{"generate_audio", true}})).report);
    KR_HAS_ERROR(check(id, with(base(id), {{"generate_audio", "yes"}})).report, "generate_audio", "must be true or false, got a string");
    KR_HAS_ERROR(check(id, with(base(id), {{"generate_audio", 1}})).report, "generate_audio", "must be true or false, got a number");
    // Defaults: V3/v2.6 on, O3 off.
    CHECK(check(id, base(id)).input["generate_audio"] == (e.family != "o3"));
  }
}

TEST_CASE("rule 15: the start frame", "[validate][rule15]") {
  SECTION("required, under each endpoint's own name") {
    std::vector<std::pair<std::string, std::string>> req = {{"v3/pro/i2v", "start_image_url"},
                                                            {"v3/standard/i2v", "start_image_url"},
                                                            {"v2.6/pro/i2v", "start_image_url"},
                                                            {"o3/pro/i2v", "image_url"},
                                                            {"o3/standard/i2v", "image_url"},
                                                            {"v2.5-turbo/pro/i2v", "image_url"}};
    for (auto& [id, field] : req) {
      INFO(id);
      KR_NO_ERROR_AT(check(id, base(id)).report, field);
      auto c = check(id, without(base(id), field));
      KR_HAS_ERROR(c.report, field, "is required on " + krt::ep(id).short_id);
      KR_HAS_ERROR(check(id, with(base(id), {{field, ""}})).report, field, "must be a non-empty URL");
      KR_HAS_ERROR(check(id, with(base(id), {{field, 5}})).report, field, "must be a non-empty URL");
    }
  }
  SECTION("the wrong name gets a hint") {
    auto c = check("v3/pro/i2v", {{"prompt", "a"}, {"image_url", kImg}});
    KR_HAS_ERROR(c.report, "start_image_url", "not image_url");
    c = check("v2.5-turbo/pro/i2v", {{"prompt", "a"}, {"start_image_url", kImg}});
    KR_HAS_ERROR(c.report, "image_url", "not start_image_url");
  }
  SECTION("O3 R2V: start_image_url optional") {
    for (auto id : {"o3/pro/r2v", "o3/standard/r2v"}) {
      INFO(id);
      KR_OK(check(id, base(id)).report);
      KR_OK(check(id, with(base(id), {{"start_image_url", kImg}})).report);
    }
  }
  SECTION("T2V takes no start frame") {
    KR_HAS_ERROR(check("v3/pro/t2v", with(base("v3/pro/t2v"), {{"start_image_url", kImg}})).report, "start_image_url", "is not a field of");
  }
}

TEST_CASE("rule 16: the end frame", "[validate][rule16]") {
  SECTION("end_image_url where it exists") {
    for (auto id : {"v3/pro/i2v", "v3/standard/i2v", "o3/pro/i2v", "o3/standard/i2v", "v2.6/pro/i2v"}) {
      INFO(id);
      KR_OK(check(id, with(base(id), {{"end_image_url", kImg2}})).report);
      KR_HAS_ERROR(check(id, with(base(id), {{"end_image_url", ""}})).report, "end_image_url", "must be a non-empty URL");
      KR_HAS_ERROR(check(id, with(base(id), {{"tail_image_url", kImg2}})).report, "tail_image_url",
                   "calls its last frame end_image_url");
    }
  }
  SECTION("v2.5-turbo I2V calls it tail_image_url") {
    KR_OK(check("v2.5-turbo/pro/i2v", with(base("v2.5-turbo/pro/i2v"), {{"tail_image_url", kImg2}})).report);
    KR_HAS_ERROR(check("v2.5-turbo/pro/i2v", with(base("v2.5-turbo/pro/i2v"), {{"end_image_url", kImg2}})).report,
                 "end_image_url", "calls its last frame tail_image_url");
  }
  SECTION("O3 R2V: an end frame needs a start frame") {
    for (auto id : {"o3/pro/r2v", "o3/standard/r2v"}) {
      INFO(id);
      KR_OK(check(id, with(base(id), {{"start_image_url", kImg}, {"end_image_url", kImg2}})).report);
      KR_HAS_ERROR(check(id, with(base(id), {{"end_image_url", kImg2}})).report, "end_image_url", "needs a start frame");
    }
  }
  SECTION("T2V takes no end frame") {
    for (auto id : {"v3/pro/t2v", "o3/pro/t2v", "v2.6/pro/t2v", "v2.5-turbo/pro/t2v"}) {
      INFO(id);
      KR_HAS_ERROR(check(id, with(base(id), {{"end_image_url", kImg2}})).report, "end_image_url", "is not a field of");
    }
  }
}

TEST_CASE("rule 17: elements only on V3 I2V and O3 R2V", "[validate][rule17]") {
  for (auto& id : kAll) {
    INFO(id);
    json in = with(base(id), {{"prompt", "@Element1 waves"}, {"elements", {image_el()}}});
    kr::Report r;
    REQUIRE_NOTHROW(r = check(id, in).report);
    if (krt::ep(id).has("elements"))
      KR_OK(r);
    else
      KR_HAS_ERROR(r, "elements", "is not a field of " + krt::ep(id).short_id);
  }
}

TEST_CASE("rule 18: an element is an image set or a video", "[validate][rule18]") {
  for (auto id : {"v3/pro/i2v", "v3/standard/i2v", "o3/pro/r2v", "o3/standard/r2v"}) {
    INFO(id);
    auto el = [&](json e) { return check(id, with(base(id), {{"prompt", "@Element1 walks"}, {"elements", {e}}})).report; };
    DYNAMIC_SECTION("valid shapes: frontal + 1 or 3 references; a video" << " @ " << id) {
      KR_OK(el(image_el(1)));
      KR_OK(el(image_el(3)));
      KR_OK(el(video_el()));
    }
    DYNAMIC_SECTION("frontal alone is refused" << " @ " << id) {
      KR_HAS_ERROR(el({{"frontal_image_url", kImg}}), "elements[0].reference_image_urls", "fal refuses a frontal image alone");
    }
    DYNAMIC_SECTION("references: 1–3 non-empty entries in a list" << " @ " << id) {
      KR_HAS_ERROR(el(image_el(4)), "elements[0].reference_image_urls", "4 images is above the maximum of 3");
      KR_HAS_ERROR(el({{"frontal_image_url", kImg}, {"reference_image_urls", json::array()}}), "elements[0].reference_image_urls",
                   "is empty; at least 1 reference image");
      KR_HAS_ERROR(el({{"frontal_image_url", kImg}, {"reference_image_urls", kImg2}}), "elements[0].reference_image_urls",
                   "must be a list of 1–3 URLs");
      KR_HAS_ERROR(el({{"frontal_image_url", kImg}, {"reference_image_urls", {kImg2, ""}}}),
                   "elements[0].reference_image_urls[1]", "must be a non-empty URL");
    }
    DYNAMIC_SECTION("references without a frontal image" << " @ " << id) {
      KR_HAS_ERROR(el({{"reference_image_urls", {kImg2}}}), "elements[0].frontal_image_url", "is required for an image element");
    }
    DYNAMIC_SECTION("both, or neither" << " @ " << id) {
      json both = image_el(1);
      both["video_url"] = kVid;
      KR_HAS_ERROR(el(both), "elements[0]", "not both");
      KR_HAS_ERROR(el(json::object()), "elements[0]", "needs frontal_image_url + reference_image_urls, or video_url");
      KR_HAS_ERROR(el({{"video_url", ""}}), "elements[0].video_url", "must be a non-empty URL");
    }
    DYNAMIC_SECTION("not a table; unknown keys (S3's {image_url, description})" << " @ " << id) {
      KR_HAS_ERROR(el("hero.png"), "elements[0]", "must be a table, got a string");
      auto r = el({{"image_url", kImg}, {"description", "a knight"}});
      KR_HAS_ERROR(r, "elements[0].image_url", "is not a field of an element");
      KR_HAS_ERROR(r, "elements[0].description", "is not a field of an element");
    }
    DYNAMIC_SECTION("elements must be a list" << " @ " << id) {
      KR_HAS_ERROR(check(id, with(base(id), {{"elements", image_el()}})).report, "elements", "must be a list, got a table");
    }
  }
}

TEST_CASE("rule 19: at most one element with a video", "[validate][rule19]") {
  for (auto id : {"v3/pro/i2v", "o3/standard/r2v"}) {
    INFO(id);
    KR_OK(check(id, with(base(id), {{"prompt", refs_prompt(2)}, {"elements", {video_el(), image_el()}}})).report);
    auto c = check(id, with(base(id), {{"prompt", refs_prompt(2)}, {"elements", {video_el(), video_el()}}}));
    KR_HAS_ERROR(c.report, "elements", "2 elements have a video_url; a request can only have one element with a video");
  }
}

TEST_CASE("rule 20: element counts", "[validate][rule20]") {
  auto els = [](int images, int videos) {
    json a = json::array();
    for (int i = 0; i < videos; ++i) a.push_back(video_el());
    for (int i = 0; i < images; ++i) a.push_back(image_el());
    return a;
  };
  SECTION("V3 I2V: at most 4; a warning at 4 with an end frame") {
    for (auto id : {"v3/pro/i2v", "v3/standard/i2v"}) {
      INFO(id);
      auto four = check(id, with(base(id), {{"prompt", refs_prompt(4)}, {"elements", els(4, 0)}}));
      KR_OK(four.report);
      KR_NO_WARNING_AT(four.report, "elements");
      auto five = check(id, with(base(id), {{"prompt", refs_prompt(5)}, {"elements", els(5, 0)}}));
      KR_HAS_ERROR(five.report, "elements", "5 elements is above the maximum of 4");
      auto four_end = check(id, with(base(id), {{"prompt", refs_prompt(4)}, {"elements", els(4, 0)}, {"end_image_url", kImg2}}));
      KR_OK(four_end.report);
      KR_HAS_WARNING(four_end.report, "elements", "4 elements with an end frame");
      auto three_end = check(id, with(base(id), {{"prompt", refs_prompt(3)}, {"elements", els(3, 0)}, {"end_image_url", kImg2}}));
      KR_OK(three_end.report);
      KR_NO_WARNING_AT(three_end.report, "elements");
    }
  }
  SECTION("O3 R2V: elements + image_urls ≤ 4 with a video element, ≤ 7 without") {
    for (auto id : {"o3/pro/r2v", "o3/standard/r2v"}) {
      INFO(id);
      json imgs3 = {kImg, kImg, kImg}, imgs4 = {kImg, kImg, kImg, kImg};
      KR_OK(check(id, with(base(id), {{"prompt", refs_prompt(1)}, {"elements", els(0, 1)}, {"image_urls", imgs3}})).report);
      auto over = check(id, with(base(id), {{"prompt", refs_prompt(1)}, {"elements", els(0, 1)}, {"image_urls", imgs4}}));
      KR_HAS_ERROR(over.report, "elements", "1 elements + 4 image_urls = 5 is above the maximum of 4 when an element has a video");
      KR_OK(check(id, with(base(id), {{"prompt", refs_prompt(3)}, {"elements", els(3, 0)}, {"image_urls", imgs4}})).report);
      auto over7 = check(id, with(base(id), {{"prompt", refs_prompt(4)}, {"elements", els(4, 0)}, {"image_urls", imgs4}}));
      KR_HAS_ERROR(over7.report, "elements", "4 elements + 4 image_urls = 8 is above the maximum of 7");
      KR_OK(check(id, with(base(id), {{"prompt", refs_prompt(7)}, {"elements", els(7, 0)}})).report);
    }
  }
  SECTION("O3 R2V: image_urls alone count towards the 7 as well") {
    json eight = json::array();
    for (int i = 0; i < 8; ++i) eight.push_back(kImg);
    json seven = eight;
    seven.erase(seven.size() - 1);
    KR_OK(check("o3/pro/r2v", with(base("o3/pro/r2v"), {{"image_urls", seven}})).report);
    auto c = check("o3/pro/r2v", with(base("o3/pro/r2v"), {{"image_urls", eight}}));
    KR_HAS_ERROR(c.report, "image_urls", "0 elements + 8 image_urls = 8 is above the maximum of 7");
  }
}

TEST_CASE("rule 21: image_urls only on O3 R2V, each a non-empty URL", "[validate][rule21]") {
  for (auto& id : kAll) {
    INFO(id);
    auto c = check(id, with(base(id), {{"image_urls", {kImg}}}));
    if (krt::ep(id).mode == "r2v")
      KR_OK(c.report);
    else
      KR_HAS_ERROR(c.report, "image_urls", "is not a field of " + krt::ep(id).short_id);
  }
  auto c = check("o3/pro/r2v", with(base("o3/pro/r2v"), {{"image_urls", {kImg, ""}}}));
  KR_HAS_ERROR(c.report, "image_urls[1]", "must be a non-empty URL or file path");
  KR_NO_ERROR_AT(c.report, "image_urls[0]");
  c = check("o3/standard/r2v", with(base("o3/standard/r2v"), {{"image_urls", kImg}}));
  KR_HAS_ERROR(c.report, "image_urls", "must be a list");
}

TEST_CASE("rule 22: @ElementN and @ImageN references", "[validate][rule22]") {
  SECTION("in range: no error, no warning") {
    auto c = check("v3/pro/i2v", with(base("v3/pro/i2v"), {{"prompt", "@Element1 meets @Element2"}, {"elements", {image_el(), video_el()}}}));
    KR_OK(c.report);
    CHECK(c.report.warnings.empty());
    c = check("o3/pro/r2v", {{"prompt", "@Image1 style, @Image2 light"}, {"image_urls", {kImg, kImg2}}});
    KR_OK(c.report);
  }
  SECTION("out of range, in the prompt and in a shot prompt") {
    auto c = check("v3/pro/i2v", with(base("v3/pro/i2v"), {{"prompt", "@Element1 and @Element2"}, {"elements", {image_el()}}}));
    KR_HAS_ERROR(c.report, "prompt", "@Element2 refers to element 2 but the request has 1 elements");
    c = check("v3/pro/i2v", with(base("v3/pro/i2v"), {{"prompt", "@Element0"}, {"elements", {image_el()}}}));
    KR_HAS_ERROR(c.report, "prompt", "@Element0 refers to element 0");
    json in = without(base("o3/standard/r2v"), "prompt");
    in["multi_prompt"] = shots({{"@Element1 enters", "5"}, {"then @Element3 leaves", "5"}});
    in["elements"] = {image_el(), image_el()};
    in["prompt"] = nullptr;
    c = check("o3/standard/r2v", in);
    KR_HAS_ERROR(c.report, "multi_prompt[1].prompt", "@Element3 refers to element 3 but the request has 2 elements");
    KR_NO_ERROR_AT(c.report, "multi_prompt[0].prompt");
    c = check("o3/pro/r2v", {{"prompt", "@Image2"}, {"image_urls", {kImg}}});
    KR_HAS_ERROR(c.report, "prompt", "@Image2 refers to image 2 but the request has 1 image_urls");
  }
  SECTION("on an endpoint without elements / image_urls") {
    for (auto id : {"v3/pro/t2v", "o3/pro/i2v", "v2.6/pro/i2v", "v2.5-turbo/pro/t2v"}) {
      INFO(id);
      KR_HAS_ERROR(check(id, with(base(id), {{"prompt", "@Element1 smiles"}})).report, "prompt", "@Element1 is used but " + krt::ep(id).short_id + " takes no elements");
    }
    KR_HAS_ERROR(check("v3/pro/i2v", with(base("v3/pro/i2v"), {{"prompt", "like @Image1"}})).report, "prompt",
                 "@Image1 is used but v3/pro/i2v takes no image_urls");
  }
  SECTION("a declared element never referenced is a warning") {
    auto p = krt::prep("v3/pro/i2v", with(base("v3/pro/i2v"), {{"prompt", "@Element1 runs"}, {"elements", {image_el(), image_el()}}}));
    CHECK(p.ok());
    KR_HAS_WARNING(p.report, "elements[1]", "element 2 is never referenced as @Element2");
    KR_NO_WARNING_AT(p.report, "elements[0]");
  }
  SECTION("an absurd index does not throw") {
    kr::Report r;
    REQUIRE_NOTHROW(r = check("v3/pro/i2v", with(base("v3/pro/i2v"),
                                                 {{"prompt", "@Element1 @Element99999999999999999999999 <<<voice_99999999999999999999999>>>"},
                                                  {"elements", {image_el()}}}))
                            .report);
    REQUIRE_NOTHROW(r = check("o3/pro/r2v", {{"prompt", "@Image99999999999999999999999"}, {"image_urls", {kImg}}}).report);
  }
}

TEST_CASE("rule 23: voices", "[validate][rule23]") {
  json voiced_video = {{"video_url", kVid}, {"voice_id", "voice-abc"}};
  SECTION("V3 I2V: a voice on a video element with audio on is valid (and billed as voice)") {
    for (auto id : {"v3/pro/i2v", "v3/standard/i2v"}) {
      INFO(id);
      auto p = krt::prep(id, with(base(id), {{"prompt", "@Element1 speaks"}, {"elements", {voiced_video}}}));
      INFO(krt::dump(p.report));
      REQUIRE(p.ok());
      CHECK(p.cost->audio == "voice");
    }
  }
  SECTION("a voice bound to an image element is refused") {
    json el = image_el();
    el["voice_id"] = "voice-abc";
    auto c = check("v3/pro/i2v", with(base("v3/pro/i2v"), {{"prompt", "@Element1"}, {"elements", {el}}}));
    KR_HAS_ERROR(c.report, "elements[0].voice_id", "a voice can only be bound to a video element; element 1 is an image set");
  }
  SECTION("a voice with generate_audio false is refused") {
    auto c = check("v3/pro/i2v", with(base("v3/pro/i2v"), {{"prompt", "@Element1"}, {"elements", {voiced_video}}, {"generate_audio", false}}));
    KR_HAS_ERROR(c.report, "elements[0].voice_id", "a bound voice needs generate_audio = true");
  }
  SECTION("at most one bound voice") {
    json el2 = image_el();
    el2["voice_id"] = "voice-2";
    auto c = check("v3/pro/i2v", with(base("v3/pro/i2v"), {{"prompt", refs_prompt(2)}, {"elements", {voiced_video, el2}}}));
    KR_HAS_ERROR(c.report, "elements", "2 voices are bound; at most one element can carry a voice");
  }
  SECTION("O3 R2V elements carry no voice") {
    auto c = check("o3/pro/r2v", {{"prompt", "@Element1"}, {"elements", {voiced_video}}});
    KR_HAS_ERROR(c.report, "elements[0].voice_id", "is not a field of an element");
  }
  SECTION("v2.6 I2V: voice_ids ≤ 2, <<<voice_N>>> in range, audio on") {
    std::string id = "v2.6/pro/i2v";
    KR_OK(check(id, with(base(id), {{"prompt", "<<<voice_1>>> hello <<<voice_2>>>"}, {"voice_ids", {"a", "b"}}})).report);
    KR_HAS_ERROR(check(id, with(base(id), {{"voice_ids", {"a", "b", "c"}}})).report, "voice_ids", "3 entries is above the maximum of 2");
    KR_HAS_ERROR(check(id, with(base(id), {{"prompt", "<<<voice_2>>> hi"}, {"voice_ids", {"a"}}})).report, "prompt",
                 "<<<voice_2>>> refers to voice 2 but voice_ids has 1");
    KR_HAS_ERROR(check(id, with(base(id), {{"voice_ids", {"a"}}, {"generate_audio", false}})).report, "voice_ids",
                 "voices need generate_audio = true");
    KR_HAS_ERROR(check(id, with(base(id), {{"voice_ids", {"a", ""}}})).report, "voice_ids[1]", "must be a non-empty string");
    KR_HAS_ERROR(check(id, with(base(id), {{"voice_ids", "a"}})).report, "voice_ids", "must be a list");
  }
  SECTION("voice on v2.6 T2V and elsewhere is an error") {
    KR_HAS_ERROR(check("v2.6/pro/t2v", with(base("v2.6/pro/t2v"), {{"voice_ids", {"a"}}})).report, "voice_ids", "is not a field of v2.6/pro/t2v");
    KR_HAS_ERROR(check("v2.6/pro/t2v", with(base("v2.6/pro/t2v"), {{"prompt", "<<<voice_1>>> hi"}})).report, "prompt",
                 "<<<voice_1>>> is used but v2.6/pro/t2v takes no voice_ids");
    KR_HAS_ERROR(check("v3/pro/i2v", with(base("v3/pro/i2v"), {{"voice_ids", {"a"}}})).report, "voice_ids", "is not a field of v3/pro/i2v");
  }
  SECTION("a mistyped generate_audio next to elements or voices is reported, not thrown") {
    kr::Report r;
    REQUIRE_NOTHROW(r = check("v3/pro/i2v", with(base("v3/pro/i2v"), {{"prompt", "@Element1"}, {"elements", {voiced_video}}, {"generate_audio", "yes"}})).report);
    KR_HAS_ERROR(r, "generate_audio", "must be true or false");
    REQUIRE_NOTHROW(r = check("v2.6/pro/i2v", with(base("v2.6/pro/i2v"), {{"voice_ids", {"a"}}, {"generate_audio", "yes"}})).report);
    KR_HAS_ERROR(r, "generate_audio", "must be true or false");
  }
}

TEST_CASE("warnings are warnings: a request with only warnings is ok", "[validate][warnings]") {
  json in = {{"multi_prompt", shots({{"@Element1 and @Element2", "5"}, {"@Element3 leaves", "5"}})},
             {"shot_type", "intelligent"},
             {"aspect_ratio", "9:16"},
             {"start_image_url", kImg},
             {"end_image_url", "https://cdn.test/end.gif"},
             {"elements", {image_el(), image_el(), image_el(), image_el()}}};
  auto p = krt::prep("v3/pro/i2v", in);
  INFO(krt::dump(p.report));
  CHECK(p.ok());
  CHECK(p.report.errors.empty());
  KR_HAS_WARNING(p.report, "aspect_ratio", "dropped");
  KR_HAS_WARNING(p.report, "shot_type", "documented only for V3 text-to-video");
  KR_HAS_WARNING(p.report, "elements[3]", "never referenced");
  KR_HAS_WARNING(p.report, "elements", "4 elements with an end frame");
  KR_HAS_WARNING(p.report, "end_image_url", ".gif images are accepted by fal's upload form but UNCONFIRMED");
  CHECK(p.report.warnings.size() == 5);
}

TEST_CASE("validate: a non-object input is one error", "[validate]") {
  auto r = kr::validate(krt::ep("v3/pro/t2v"), json::array());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].path == "");
  CHECK_THAT(r.errors[0].message, Catch::Contains("must be a table of fal fields, got a list"));
}

TEST_CASE("rule 16 upstream: O3 R2V subject limits with frames are warnings, not errors", "[validate]") {
  const kr::Endpoint& ep = *kr::Catalog::builtin().find("o3/pro/r2v");
  kr::json in = {{"prompt", "@Image1 and @Image2 and @Image3 walk"},
                 {"start_image_url", "https://cdn.test/a.png"},
                 {"end_image_url", "https://cdn.test/b.png"},
                 {"image_urls", {"https://cdn.test/1.png", "https://cdn.test/2.png", "https://cdn.test/3.png", "https://cdn.test/4.png"}},
                 {"duration", "5"}};
  kr::Report r = kr::validate(ep, in);
  CHECK(r.ok());
  bool subjects = false, end_frame = false;
  for (auto& w : r.warnings) {
    subjects = subjects || (w.path == "elements" && w.message.find("at most 3 subjects") != std::string::npos);
    end_frame = end_frame || (w.path == "end_image_url" && w.message.find("more than 2 reference images") != std::string::npos);
  }
  CHECK(subjects);
  CHECK(end_frame);
  in.erase("end_image_url");
  in.erase("start_image_url");
  kr::Report plain = kr::validate(ep, in);
  for (auto& w : plain.warnings) CHECK(w.message.find("UNCONFIRMED on fal") == std::string::npos);
}
