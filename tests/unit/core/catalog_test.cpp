// The endpoint catalog (data/endpoints.json): the 14 endpoints of docs/endpoints.md, lookups by every
// accepted spelling, and the per-family field matrix (docs/endpoints.md).
#include <set>

#include "core_test_util.h"

using kr::Catalog;
using kr::json;

namespace {

const std::vector<std::string> kIds = {
    "fal-ai/kling-video/v3/pro/text-to-video",        "fal-ai/kling-video/v3/standard/text-to-video",
    "fal-ai/kling-video/v3/pro/image-to-video",       "fal-ai/kling-video/v3/standard/image-to-video",
    "fal-ai/kling-video/o3/pro/text-to-video",        "fal-ai/kling-video/o3/standard/text-to-video",
    "fal-ai/kling-video/o3/pro/image-to-video",       "fal-ai/kling-video/o3/standard/image-to-video",
    "fal-ai/kling-video/o3/pro/reference-to-video",   "fal-ai/kling-video/o3/standard/reference-to-video",
    "fal-ai/kling-video/v2.6/pro/text-to-video",      "fal-ai/kling-video/v2.6/pro/image-to-video",
    "fal-ai/kling-video/v2.5-turbo/pro/text-to-video", "fal-ai/kling-video/v2.5-turbo/pro/image-to-video",
};

std::string short_of(const std::string& id) {
  std::string s = id.substr(std::string("fal-ai/kling-video/").size());
  for (auto [from, to] : {std::pair<std::string, std::string>{"text-to-video", "t2v"},
                          {"image-to-video", "i2v"},
                          {"reference-to-video", "r2v"}}) {
    auto p = s.find(from);
    if (p != std::string::npos) s.replace(p, from.size(), to);
  }
  return s;
}

}  // namespace

TEST_CASE("catalog: exactly the 14 endpoints of the reference", "[catalog]") {
  auto& all = Catalog::builtin().all();
  REQUIRE(all.size() == 14);
  std::set<std::string> ids, shorts;
  for (auto& e : all) {
    ids.insert(e.id);
    shorts.insert(e.short_id);
  }
  CHECK(ids == std::set<std::string>(kIds.begin(), kIds.end()));
  CHECK(shorts.size() == 14);  // short forms are unique
}

TEST_CASE("catalog: lookup by full id, id without prefix and short form", "[catalog]") {
  auto& cat = Catalog::builtin();
  for (auto& id : kIds) {
    INFO(id);
    const kr::Endpoint* full = cat.find(id);
    REQUIRE(full != nullptr);
    CHECK(full->id == id);
    std::string bare = id.substr(std::string("fal-ai/kling-video/").size());
    CHECK(cat.find(bare) == full);
    CHECK(full->short_id == short_of(id));
    CHECK(cat.find(short_of(id)) == full);
    // A short form behind the prefix is accepted too.
    CHECK(cat.find("fal-ai/kling-video/" + short_of(id)) == full);
  }
}

TEST_CASE("catalog: family, tier and mode of each endpoint", "[catalog]") {
  auto& cat = Catalog::builtin();
  auto* e = cat.find("v2.5-turbo/pro/i2v");
  REQUIRE(e);
  CHECK(e->family == "v2.5-turbo");
  CHECK(e->tier == "pro");
  CHECK(e->mode == "i2v");
  e = cat.find("o3/standard/reference-to-video");
  REQUIRE(e);
  CHECK(e->family == "o3");
  CHECK(e->tier == "standard");
  CHECK(e->mode == "r2v");
  e = cat.find("v3/standard/t2v");
  REQUIRE(e);
  CHECK(e->family == "v3");
  CHECK(e->mode == "t2v");
}

TEST_CASE("catalog: unknown endpoints are not found", "[catalog]") {
  auto& cat = Catalog::builtin();
  CHECK(cat.find("") == nullptr);
  CHECK(cat.find("v3/4k/image-to-video") == nullptr);
  CHECK(cat.find("v3/pro/motion-control") == nullptr);
  CHECK(cat.find("fal-ai/kling-video/o1/pro/text-to-video") == nullptr);
  CHECK(cat.find("v2.5-turbo/standard/image-to-video") == nullptr);
  CHECK(cat.find("V3/PRO/T2V") == nullptr);  // ids are case-sensitive
  CHECK(cat.find("other/v3/pro/t2v") == nullptr);
}

TEST_CASE("catalog: the field matrix of every family", "[catalog]") {
  auto has = [](const std::string& id, const char* f) { return krt::ep(id).has(f); };
  // multi_prompt / shot_type: V3 and O3 only.
  for (auto id : {"v3/pro/t2v", "v3/standard/i2v", "o3/pro/t2v", "o3/standard/i2v", "o3/pro/r2v"}) {
    INFO(id);
    CHECK(has(id, "multi_prompt"));
    CHECK(has(id, "shot_type"));
  }
  for (auto id : {"v2.6/pro/t2v", "v2.6/pro/i2v", "v2.5-turbo/pro/t2v", "v2.5-turbo/pro/i2v"}) {
    INFO(id);
    CHECK_FALSE(has(id, "multi_prompt"));
    CHECK_FALSE(has(id, "shot_type"));
  }
  // generate_audio: not on v2.5-turbo.
  CHECK_FALSE(has("v2.5-turbo/pro/t2v", "generate_audio"));
  CHECK(has("v2.6/pro/t2v", "generate_audio"));
  // elements: V3 I2V and O3 R2V only.
  std::set<std::string> with_elements;
  for (auto& e : Catalog::builtin().all())
    if (e.has("elements")) with_elements.insert(e.short_id);
  CHECK(with_elements == std::set<std::string>{"v3/pro/i2v", "v3/standard/i2v", "o3/pro/r2v", "o3/standard/r2v"});
  // image_urls: O3 R2V only; voice_ids: v2.6 I2V only.
  std::set<std::string> with_images, with_voices;
  for (auto& e : Catalog::builtin().all()) {
    if (e.has("image_urls")) with_images.insert(e.short_id);
    if (e.has("voice_ids")) with_voices.insert(e.short_id);
  }
  CHECK(with_images == std::set<std::string>{"o3/pro/r2v", "o3/standard/r2v"});
  CHECK(with_voices == std::set<std::string>{"v2.6/pro/i2v"});
  // Start frame names.
  CHECK(krt::ep("v3/pro/i2v").start_image == "start_image_url");
  CHECK(krt::ep("v2.6/pro/i2v").start_image == "start_image_url");
  CHECK(krt::ep("o3/pro/i2v").start_image == "image_url");
  CHECK(krt::ep("v2.5-turbo/pro/i2v").start_image == "image_url");
  CHECK(krt::ep("o3/pro/r2v").start_image == "");
  CHECK(krt::ep("v2.5-turbo/pro/i2v").spec.value("end_image", "") == "tail_image_url");
  // Audio defaults: V3/v2.6 on, O3 off.
  for (auto& e : Catalog::builtin().all()) {
    if (!e.has("generate_audio")) continue;
    INFO(e.short_id);
    CHECK(e.field("generate_audio")->at("default") == json(e.family != "o3"));
  }
}

TEST_CASE("catalog: unknown endpoint error from prepare() lists the short forms", "[catalog][prepare]") {
  auto p = krt::prep("v3/ultra/t2v", {{"prompt", "x"}});
  CHECK_FALSE(p.ok());
  CHECK(p.endpoint == nullptr);
  REQUIRE(p.report.errors.size() == 1);
  auto& e = p.report.errors[0];
  CHECK(e.path == "endpoint");
  CHECK_THAT(e.message, Catch::Contains("\"v3/ultra/t2v\" is not a known Kling endpoint"));
  for (auto& x : Catalog::builtin().all()) CHECK_THAT(e.message, Catch::Contains(x.short_id));
}
