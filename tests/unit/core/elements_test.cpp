// Named elements: the registry's shape rules (docs/validation.md#r18) and `@name` → `@ElementN`.
#include "core/elements.h"
#include "core_test_util.h"

using kr::Element;
using kr::ElementRegistry;
using kr::json;

namespace {

Element images(const std::string& name, int refs = 1) {
  Element e;
  e.name = name;
  e.frontal = "https://cdn.test/" + name + "-front.png";
  for (int i = 0; i < refs; ++i) e.references.push_back("https://cdn.test/" + name + "-" + std::to_string(i) + ".png");
  return e;
}

Element video(const std::string& name, const std::string& voice = "") {
  Element e;
  e.name = name;
  e.video = "https://cdn.test/" + name + ".mp4";
  e.voice_id = voice;
  return e;
}

ElementRegistry registry(std::initializer_list<Element> els) {
  ElementRegistry r;
  for (auto& e : els) {
    kr::Report rep;
    bool ok = r.add(e, rep);
    INFO(krt::dump(rep));
    REQUIRE(ok);
  }
  return r;
}

struct Added {
  bool ok;
  kr::Report report;
  ElementRegistry reg;
};
Added try_add(Element e, const std::string& path = "element") {
  Added a;
  a.ok = a.reg.add(std::move(e), a.report, path);
  return a;
}

json resolved(json in, const ElementRegistry& reg, kr::Report* out = nullptr) {
  kr::Report r;
  kr::resolve_elements(in, reg, r);
  if (out) *out = r;
  return in;
}

}  // namespace

TEST_CASE("elements registry: valid shapes are added", "[elements]") {
  auto reg = registry({images("hero", 1), images("villain", 3), video("dog", "voice-1")});
  CHECK_FALSE(reg.empty());
  CHECK(reg.names() == std::vector<std::string>{"dog", "hero", "villain"});
  REQUIRE(reg.find("hero"));
  CHECK(reg.find("hero")->references.size() == 1);
  CHECK(reg.find("nobody") == nullptr);
  CHECK(ElementRegistry().empty());
}

TEST_CASE("elements registry: shape rules", "[elements]") {
  SECTION("a frontal image alone is refused") {
    auto a = try_add(images("hero", 0));
    CHECK_FALSE(a.ok);
    KR_HAS_ERROR(a.report, "element.references", "fal refuses a frontal image alone");
    CHECK(a.reg.find("hero") == nullptr);
  }
  SECTION("1–3 references") {
    CHECK(try_add(images("a", 1)).ok);
    CHECK(try_add(images("a", 3)).ok);
    auto a = try_add(images("a", 4));
    CHECK_FALSE(a.ok);
    KR_HAS_ERROR(a.report, "element.references", "4 reference images is above the maximum of 3");
  }
  SECTION("references without a frontal image") {
    Element e = images("hero", 2);
    e.frontal.clear();
    auto a = try_add(e);
    CHECK_FALSE(a.ok);
    KR_HAS_ERROR(a.report, "element.frontal", "element \"hero\" has references but no frontal image");
  }
  SECTION("video XOR images") {
    Element both = images("hero", 1);
    both.video = "https://cdn.test/hero.mp4";
    auto a = try_add(both);
    CHECK_FALSE(a.ok);
    KR_HAS_ERROR(a.report, "element", "has both images and a video");
    Element none;
    none.name = "ghost";
    auto b = try_add(none);
    CHECK_FALSE(b.ok);
    KR_HAS_ERROR(b.report, "element", "element \"ghost\" needs frontal + 1–3 references, or a video");
    CHECK(try_add(video("clip")).ok);
  }
  SECTION("bad names") {
    for (auto name : {"", "1hero", "he ro", "hero!", "@hero", "héros", "a.b"}) {
      INFO("name: " << name);
      auto a = try_add(images(name));
      CHECK_FALSE(a.ok);
      KR_HAS_ERROR(a.report, "element.name", "is not a usable element name");
    }
    for (auto name : {"hero", "Hero_2", "_x", "big-dog", "Element", "Elementary", "Image_1"}) {
      INFO("name: " << name);
      CHECK(try_add(images(name)).ok);
    }
  }
  SECTION("names fal would read as its own references are refused") {
    for (auto name : {"Element1", "Element12", "Image2"}) {
      INFO("name: " << name);
      auto a = try_add(images(name));
      CHECK_FALSE(a.ok);
      KR_HAS_ERROR(a.report, "element.name", std::string("would be read as fal's own @") + name + " reference");
    }
  }
  SECTION("errors are placed under the given path") {
    auto a = try_add(images("1x", 0), "script.lua:4 element");
    KR_HAS_ERROR(a.report, "script.lua:4 element.name", "is not a usable element name");
    KR_HAS_ERROR(a.report, "script.lua:4 element.references", "at least 1 reference image");
  }
}

TEST_CASE("elements: to_fal is fal's KlingV3ComboElementInput", "[elements]") {
  auto img = images("hero", 2).to_fal();
  CHECK(img == json{{"frontal_image_url", "https://cdn.test/hero-front.png"},
                    {"reference_image_urls", {"https://cdn.test/hero-0.png", "https://cdn.test/hero-1.png"}}});
  CHECK(video("dog").to_fal() == json{{"video_url", "https://cdn.test/dog.mp4"}});
  CHECK(video("dog", "v-9").to_fal() == json{{"video_url", "https://cdn.test/dog.mp4"}, {"voice_id", "v-9"}});
}

TEST_CASE("elements: @name becomes @ElementN in the prompt", "[elements]") {
  auto reg = registry({images("hero"), images("villain"), video("dog", "voice-7")});
  kr::Report r;
  auto in = resolved({{"prompt", "@hero walks in."}}, reg, &r);
  CHECK(r.errors.empty());
  CHECK(in["prompt"] == "@Element1 walks in.");
  REQUIRE(in["elements"].size() == 1);
  CHECK(in["elements"][0] == reg.find("hero")->to_fal());

  SECTION("order of first use; repeated use keeps the index") {
    auto j = resolved({{"prompt", "@villain chases @hero; @villain laughs, (@hero) hides"}}, reg);
    CHECK(j["prompt"] == "@Element1 chases @Element2; @Element1 laughs, (@Element2) hides");
    REQUIRE(j["elements"].size() == 2);
    CHECK(j["elements"][0] == reg.find("villain")->to_fal());
    CHECK(j["elements"][1] == reg.find("hero")->to_fal());
  }
  SECTION("across the prompt, then the shots in order") {
    json j = resolved({{"prompt", "@dog sleeps"},
                       {"multi_prompt", {{{"prompt", "@villain enters"}, {"duration", "5"}},
                                         {{"prompt", "@hero and @dog and @villain"}},
                                         {{"duration", "3"}}}}},
                      reg);
    CHECK(j["prompt"] == "@Element1 sleeps");
    CHECK(j["multi_prompt"][0]["prompt"] == "@Element2 enters");
    CHECK(j["multi_prompt"][0]["duration"] == "5");
    CHECK(j["multi_prompt"][1]["prompt"] == "@Element3 and @Element1 and @Element2");
    CHECK_FALSE(j["multi_prompt"][2].contains("prompt"));
    REQUIRE(j["elements"].size() == 3);
    CHECK(j["elements"][0] == reg.find("dog")->to_fal());
    CHECK(j["elements"][1] == reg.find("villain")->to_fal());
    CHECK(j["elements"][2] == reg.find("hero")->to_fal());
  }
  SECTION("voice_id is carried into the request") {
    auto j = resolved({{"prompt", "@dog barks"}}, reg);
    CHECK(j["elements"][0]["voice_id"] == "voice-7");
  }
  SECTION("punctuation ends a name; a trailing dash is punctuation") {
    auto j = resolved({{"prompt", "@hero's hat, @hero. @hero-"}}, reg);
    CHECK(j["prompt"] == "@Element1's hat, @Element1. @Element1-");
  }
}

TEST_CASE("elements: explicit elements come first, named ones are appended", "[elements]") {
  auto reg = registry({images("hero")});
  json explicit_el = {{"video_url", "https://cdn.test/x.mp4"}};
  auto j = resolved({{"prompt", "@Element1 meets @hero"}, {"elements", {explicit_el}}}, reg);
  CHECK(j["prompt"] == "@Element1 meets @Element2");
  REQUIRE(j["elements"].size() == 2);
  CHECK(j["elements"][0] == explicit_el);
  CHECK(j["elements"][1] == reg.find("hero")->to_fal());
  // elements = null is treated as absent.
  auto k = resolved({{"prompt", "@hero"}, {"elements", nullptr}}, reg);
  CHECK(k["elements"] == json::array({reg.find("hero")->to_fal()}));
}

TEST_CASE("elements: fal's own references and emails are left alone", "[elements]") {
  auto reg = registry({images("hero"), images("b")});
  kr::Report r;
  json in = {{"prompt", "@Element1 and @Image2 and @Element12; mail a@b.com or x_@hero"}};
  auto j = resolved(in, reg, &r);
  CHECK(r.errors.empty());
  CHECK(j == in);  // nothing rewritten, no elements added
  CHECK_FALSE(j.contains("elements"));
}

TEST_CASE("elements: an unknown @name is an error naming it", "[elements]") {
  auto reg = registry({images("hero"), images("villain")});
  kr::Report r;
  auto j = resolved({{"multi_prompt", {{{"prompt", "@hero"}}, {{"prompt", "then @ghost appears"}}}}}, reg, &r);
  KR_HAS_ERROR(r, "multi_prompt[1].prompt", "unknown element \"@ghost\" (declared elements: hero, villain)");
  CHECK(j["multi_prompt"][1]["prompt"] == "then @ghost appears");
  CHECK(j["multi_prompt"][0]["prompt"] == "@Element1");

  kr::Report r2;
  resolved({{"prompt", "@nobody"}}, ElementRegistry(), &r2);
  KR_HAS_ERROR(r2, "prompt", "unknown element \"@nobody\" (declared elements: none)");
}

TEST_CASE("elements: end to end through prepare()", "[elements][prepare]") {
  auto reg = registry({images("hero", 2), video("dog", "voice-7")});
  SECTION("V3 I2V: resolved, validated and priced with the voice tier") {
    auto p = krt::prep("v3/pro/i2v", {{"prompt", "@hero pets @dog"}, {"start_image_url", "https://cdn.test/s.png"}}, &reg);
    INFO(krt::dump(p.report));
    REQUIRE(p.ok());
    CHECK(p.input["prompt"] == "@Element1 pets @Element2");
    CHECK(p.input["elements"].size() == 2);
    CHECK(p.report.warnings.empty());
    CHECK(p.cost->audio == "voice");
  }
  SECTION("an endpoint without elements refuses them") {
    auto p = krt::prep("v3/pro/t2v", {{"prompt", "@hero smiles"}}, &reg);
    CHECK_FALSE(p.ok());
    KR_HAS_ERROR(p.report, "elements", "is not a field of v3/pro/t2v");
    KR_HAS_ERROR(p.report, "prompt", "@Element1 is used but v3/pro/t2v takes no elements");
  }
  SECTION("an unknown name stops the request") {
    auto p = krt::prep("o3/pro/r2v", {{"prompt", "@cat"}}, &reg);
    CHECK_FALSE(p.ok());
    KR_HAS_ERROR(p.report, "prompt", "unknown element \"@cat\"");
  }
  SECTION("without a registry @name is plain text") {
    auto p = krt::prep("v3/pro/t2v", {{"prompt", "@hero smiles"}});
    CHECK(p.ok());
    CHECK(p.input["prompt"] == "@hero smiles");
  }
}

TEST_CASE("elements: a name is declared once, the same media again is harmless, other media is refused", "[elements]") {
  ElementRegistry reg;
  kr::Report first;
  Element hero = images("hero", 1);
  hero.origin = "shots.lua:3";
  REQUIRE(reg.add(hero, first));
  kr::Report again;
  CHECK(reg.add(images("hero", 1), again));
  CHECK(again.ok());
  kr::Report other;
  CHECK_FALSE(reg.add(images("hero", 2), other));
  KR_HAS_ERROR(other, "element.name", "element \"hero\" is already declared at shots.lua:3 with other media");
  CHECK(reg.find("hero")->references.size() == 1);  // the first declaration still stands
}
