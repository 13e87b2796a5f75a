// `klingrun plan SCRIPT --json` over scripts/examples/*.lua: the shape of the plan, its sums,
// out/<script>/plan.json, and what each example is meant to produce.
#include <catch2/catch.hpp>

#include "cli_helpers.h"

using namespace clitest;

namespace {

const std::string kPrefix = "fal-ai/kling-video/";

struct Plan {
  Result res;
  json doc;
  json file;  // out/<script>/plan.json
};

Plan plan_json(const TempDir& dir, const std::string& stem, std::vector<std::string> script_args = {}) {
  std::vector<std::string> args = {"plan", example(stem), "--json"};
  if (!script_args.empty()) {
    args.push_back("--");
    args.insert(args.end(), script_args.begin(), script_args.end());
  }
  Plan p;
  p.res = dir.run(args);
  INFO("stderr: " << p.res.err);
  REQUIRE(p.res.exit_code == 0);
  REQUIRE_NOTHROW(p.doc = json::parse(p.res.out));
  fs::path f = dir / ("out/" + stem + "/plan.json");
  if (fs::exists(f)) p.file = json::parse(read_file(f));
  return p;
}

const json& job_named(const json& doc, const std::string& name) {
  for (auto& j : doc["jobs"])
    if (j["name"] == name) return j;
  FAIL("no job named " << name << " in " << doc.dump());
  static json none;
  return none;
}

int secs(const json& input) { return std::stoi(input["duration"].get<std::string>()); }

}  // namespace

TEST_CASE("plan --json: every example script gives a consistent plan and writes plan.json", "[plan][examples]") {
  auto scripts = example_scripts();
  REQUIRE(scripts.size() >= 6);
  for (auto& script : scripts) {
    std::string stem = script.stem().string();
    DYNAMIC_SECTION(stem) {
      TempDir dir;
      Result r = dir.run({"plan", script.string(), "--json"});
      INFO("stderr: " << r.err);
      REQUIRE(r.exit_code == 0);
      CHECK_FALSE(looks_internal(r.err));

      json doc;
      REQUIRE_NOTHROW(doc = json::parse(r.out));
      REQUIRE(doc.is_object());
      REQUIRE(doc.contains("jobs"));
      REQUIRE(doc["jobs"].is_array());
      REQUIRE(doc.contains("total_usd"));
      REQUIRE(doc["total_usd"].is_number());
      CHECK(doc.value("script", "") == stem);
      REQUIRE_FALSE(doc["jobs"].empty());

      double sum = 0;
      std::set<std::string> names;
      for (auto& job : doc["jobs"]) {
        INFO("job: " << job.dump());
        REQUIRE(job.contains("name"));
        REQUIRE(job["name"].is_string());
        REQUIRE(job.contains("endpoint"));
        REQUIRE(job["endpoint"].is_string());
        CHECK(job["endpoint"].get<std::string>().rfind(kPrefix, 0) == 0);
        REQUIRE(job.contains("input"));
        REQUIRE(job["input"].is_object());
        REQUIRE(job.contains("cost_usd"));
        REQUIRE(job["cost_usd"].is_number());
        CHECK(job["cost_usd"].get<double>() > 0);
        REQUIRE(job["input"].contains("duration"));
        REQUIRE(job["input"]["duration"].is_string());
        CHECK(job.value("seconds", -1) == secs(job["input"]));
        // Each multi_prompt shot duration is a string too (fal's DurationEnum).
        if (job["input"].contains("multi_prompt"))
          for (auto& shot : job["input"]["multi_prompt"]) CHECK(shot["duration"].is_string());
        CHECK(job.value("state", "") == "done");
        CHECK(names.insert(job["name"].get<std::string>()).second);
        sum += job["cost_usd"].get<double>();
      }
      CHECK(doc["total_usd"].get<double>() == Approx(sum).margin(1e-6));

      fs::path plan_file = dir / ("out/" + stem + "/plan.json");
      REQUIRE(fs::exists(plan_file));
      json file;
      REQUIRE_NOTHROW(file = json::parse(read_file(plan_file)));
      CHECK(file["jobs"] == doc["jobs"]);
      CHECK(file["total_usd"] == doc["total_usd"]);
    }
  }
}

TEST_CASE("plan --json: every planned input passes `klingrun check` at the same price", "[plan][examples][check]") {
  for (auto& script : example_scripts()) {
    std::string stem = script.stem().string();
    DYNAMIC_SECTION(stem) {
      TempDir dir;
      Plan p = plan_json(dir, stem);
      for (auto& job : p.doc["jobs"]) {
        INFO(stem << " job " << job["name"] << ": " << job["input"].dump());
        Result c = dir.run({"check", "--endpoint", job["endpoint"].get<std::string>(), "--json", "-"}, job["input"].dump());
        INFO("check stderr: " << c.err);
        REQUIRE(c.exit_code == 0);
        json cj = json::parse(c.out);
        CHECK(cj["endpoint"] == job["endpoint"]);
        CHECK(cj["cost_usd"].get<double>() == Approx(job["cost_usd"].get<double>()).margin(1e-9));
        CHECK(cj["seconds"] == job["seconds"]);
        CHECK(cj["input"] == job["input"]);  // already normalized: check changes nothing
      }
    }
  }
}

TEST_CASE("plan --json t2v_single: one V3 Pro text-to-video job at $0.84", "[plan][examples]") {
  TempDir dir;
  Plan p = plan_json(dir, "t2v_single");
  REQUIRE(p.doc["jobs"].size() == 1);
  const json& job = p.doc["jobs"][0];
  CHECK(job["name"] == "lighthouse");
  CHECK(job["endpoint"] == "fal-ai/kling-video/v3/pro/text-to-video");
  CHECK(job["cost_usd"].get<double>() == Approx(0.84));
  CHECK(p.doc["total_usd"].get<double>() == Approx(0.84));
  CHECK(job["seconds"] == 5);
  CHECK(job["audio"] == "on");
  CHECK(job["input"]["duration"] == "5");
  CHECK(job["input"]["aspect_ratio"] == "16:9");
  CHECK(job["input"]["generate_audio"] == true);
  CHECK(job["input"]["prompt"] == "A lighthouse on a cliff at dusk, waves crashing below, the lamp flickers on, gulls cry.");
  CHECK_FALSE(job["input"].contains("multi_prompt"));
  // The script's own print goes to stderr so stdout stays JSON.
  CHECK(contains(p.res.err, "lighthouse: $0.840"));
}

TEST_CASE("plan --json t2v_single: a script argument becomes the prompt", "[plan][examples][args]") {
  TempDir dir;
  Plan p = plan_json(dir, "t2v_single", {"a red kite over a beach"});
  REQUIRE(p.doc["jobs"].size() == 1);
  CHECK(p.doc["jobs"][0]["input"]["prompt"] == "a red kite over a beach");
}

TEST_CASE("plan --json multi_shot: three shots whose durations add up to duration", "[plan][examples]") {
  TempDir dir;
  Plan p = plan_json(dir, "multi_shot");
  REQUIRE(p.doc["jobs"].size() == 1);
  const json& job = p.doc["jobs"][0];
  const json& in = job["input"];
  CHECK(job["name"] == "fox_in_snow");
  CHECK(job["endpoint"] == "fal-ai/kling-video/v3/pro/text-to-video");
  REQUIRE(in.contains("multi_prompt"));
  REQUIRE(in["multi_prompt"].size() == 3);
  CHECK_FALSE(in.contains("prompt"));  // fal takes prompt or multi_prompt, not both
  int sum = 0;
  std::vector<std::string> want = {"4", "3", "5"};
  for (size_t i = 0; i < 3; ++i) {
    const json& shot = in["multi_prompt"][i];
    REQUIRE(shot["duration"].is_string());
    CHECK(shot["duration"] == want[i]);
    CHECK(shot["prompt"].is_string());
    sum += std::stoi(shot["duration"].get<std::string>());
  }
  CHECK(sum == secs(in));
  CHECK(in["duration"] == "12");
  CHECK(in["aspect_ratio"] == "16:9");
  CHECK(in.value("shot_type", "") == "customize");
  CHECK(contains(in["multi_prompt"][1]["prompt"].get<std::string>(), "pricks up its ears"));
  CHECK(job["cost_usd"].get<double>() == Approx(12 * 0.168));
}

TEST_CASE("plan --json i2v_elements: elements built and @names rewritten to @ElementN", "[plan][examples][elements]") {
  TempDir dir;
  Plan p = plan_json(dir, "i2v_elements");
  REQUIRE(p.doc["jobs"].size() == 2);

  // The script's prompts, with the element names it used.
  std::map<std::string, std::vector<std::string>> original = {
      {"rooftop_launch", {"@mara kneels on the wet rooftop and switches on @drone; its rotors spin up."}},
      {"rooftop_chase",
       {"@drone lifts off and hovers at eye level with @mara.", "@mara points at the skyline; @drone races off between the towers."}}};
  std::map<std::string, size_t> refs = {{"mara", 2}, {"drone", 1}};

  for (auto& job : p.doc["jobs"]) {
    std::string name = job["name"];
    INFO("job " << name << ": " << job["input"].dump());
    CHECK(job["endpoint"] == "fal-ai/kling-video/v3/pro/image-to-video");
    const json& in = job["input"];
    CHECK(in["start_image_url"] == "https://example.com/rooftop_night.png");
    REQUIRE(in.contains("elements"));
    REQUIRE(in["elements"].is_array());
    REQUIRE(in["elements"].size() == 2);

    // Which element name each @ElementN stands for, read from the frontal image URL.
    std::map<std::string, std::string> who;
    for (size_t i = 0; i < 2; ++i) {
      const json& e = in["elements"][i];
      REQUIRE(e.contains("frontal_image_url"));
      REQUIRE(e["frontal_image_url"].is_string());
      REQUIRE(e.contains("reference_image_urls"));
      REQUIRE(e["reference_image_urls"].is_array());
      CHECK_FALSE(e["reference_image_urls"].empty());
      std::smatch m;
      std::string url = e["frontal_image_url"];
      REQUIRE(std::regex_search(url, m, std::regex("/(\\w+)_front\\.png$")));
      who["@Element" + std::to_string(i + 1)] = "@" + m[1].str();
      CHECK(e["reference_image_urls"].size() == refs[m[1].str()]);
    }
    CHECK(who.size() == 2);

    std::vector<std::string> prompts = prompts_of(in);
    std::string all = join(prompts);
    CHECK(contains(all, "@Element1"));
    CHECK(contains(all, "@Element2"));
    CHECK_FALSE(contains(all, "@mara"));
    CHECK_FALSE(contains(all, "@drone"));
    // Every @ left in a prompt is an @ElementN.
    for (size_t at = all.find('@'); at != std::string::npos; at = all.find('@', at + 1))
      CHECK(matches(all.substr(at), "^@Element[0-9]"));

    // Putting the names back gives the script's prompts: the numbering matches `elements`.
    REQUIRE(original.count(name));
    REQUIRE(prompts.size() == original[name].size());
    for (size_t i = 0; i < prompts.size(); ++i) {
      std::string back = prompts[i];
      for (auto& [tag, nm] : who)
        for (size_t at = back.find(tag); at != std::string::npos; at = back.find(tag, at + nm.size()))
          back.replace(at, tag.size(), nm);
      CHECK(back == original[name][i]);
    }
  }
  const json& chase = job_named(p.doc, "rooftop_chase");
  CHECK(chase["input"]["duration"] == "10");
  REQUIRE(chase["input"]["multi_prompt"].size() == 2);
  CHECK(chase["input"]["multi_prompt"][0]["duration"] == "4");
  CHECK(chase["input"]["multi_prompt"][1]["duration"] == "6");
  CHECK(job_named(p.doc, "rooftop_launch")["input"]["duration"] == "5");
  CHECK(p.doc["total_usd"].get<double>() == Approx(15 * 0.168));
}

TEST_CASE("plan --json procedural: every character × setting × take, distinct names", "[plan][examples]") {
  TempDir dir;
  SECTION("default two takes") {
    Plan p = plan_json(dir, "procedural");
    REQUIRE(p.doc["jobs"].size() == 12);
    std::set<std::string> names, bodies;
    for (auto& job : p.doc["jobs"]) {
      INFO(job.dump());
      std::string name = job["name"];
      names.insert(name);
      CHECK(matches(name, "^(knight|robot)_(market|desert|harbor)_take[12]$"));
      CHECK(job["endpoint"] == "fal-ai/kling-video/v3/standard/text-to-video");
      CHECK(job["input"]["generate_audio"] == false);
      CHECK(job["audio"] == "off");
      CHECK(job["input"]["aspect_ratio"] == "9:16");
      CHECK(job["input"]["duration"] == "5");
      CHECK(job["cost_usd"].get<double>() == Approx(0.42));
      CHECK(job.value("take", 0) == name.back() - '0');
      bodies.insert(job["input"]["prompt"].get<std::string>());
    }
    CHECK(names.size() == 12);
    CHECK(bodies.size() == 6);  // two takes of each prompt
    CHECK(p.doc["total_usd"].get<double>() == Approx(5.04));
    CHECK(p.doc["jobs"][0]["name"] == "knight_market_take1");
    CHECK(p.doc["jobs"][11]["name"] == "robot_harbor_take2");
  }
  SECTION("takes from the script argument") {
    Plan p = plan_json(dir, "procedural", {"1"});
    REQUIRE(p.doc["jobs"].size() == 6);
    for (auto& job : p.doc["jobs"]) CHECK(matches(job["name"].get<std::string>(), "_take1$"));
  }
}

TEST_CASE("plan --json storyboard_60s: 60 s packed into ≤ 15 s multi-shot generations", "[plan][examples][storyboard]") {
  TempDir dir;
  Plan p = plan_json(dir, "storyboard_60s");
  const json& jobs = p.doc["jobs"];
  REQUIRE(jobs.size() >= 4);

  const std::vector<std::string> shot_prompts = {
      "Rain over a neon city at night.", "Mara runs down a wet alley.", "She stops at a steel door.",
      "Her fingers on the keypad.", "Mara glances back over her shoulder.", "Joe steps out of the shadows.",
      "Mara turns to face him.", "The lock light turns green.", "They slip into a dark server room.",
      "Blue lights blink along the racks.", "Joe plugs a drive into a port.", "A progress bar crawls across a screen.",
      "Footsteps echo down the corridor.", "Mara and Joe freeze, lit by the screen."};
  const std::vector<int> shot_seconds = {5, 4, 3, 3, 4, 5, 4, 3, 5, 4, 4, 5, 5, 6};

  int total_seconds = 0;
  size_t next_shot = 0;
  for (size_t k = 0; k < jobs.size(); ++k) {
    const json& job = jobs[k];
    const json& in = job["input"];
    INFO("job " << job["name"] << ": " << in.dump());
    char want_name[32];
    std::snprintf(want_name, sizeof want_name, "heist_%02zu", k + 1);
    CHECK(job["name"] == want_name);
    CHECK(job["endpoint"] == "fal-ai/kling-video/v3/pro/text-to-video");
    CHECK(in["aspect_ratio"] == "16:9");
    CHECK(in["generate_audio"] == true);
    int d = secs(in);
    CHECK(d <= 15);
    CHECK(d >= 3);
    total_seconds += d;
    if (in.contains("multi_prompt")) {
      CHECK_FALSE(in.contains("prompt"));
      const json& shots = in["multi_prompt"];
      CHECK(shots.size() <= 6);
      int sum = 0;
      for (auto& shot : shots) {
        int s = std::stoi(shot["duration"].get<std::string>());
        CHECK(s >= 3);
        sum += s;
        std::string text = shot["prompt"];
        size_t chars = 0;
        for (unsigned char c : text) chars += (c & 0xC0) != 0x80;
        CHECK(chars <= 512);
        // Shots stay in the storyboard's order, with their own length.
        REQUIRE(next_shot < shot_prompts.size());
        CHECK(contains(text, shot_prompts[next_shot]));
        CHECK(s == shot_seconds[next_shot]);
        ++next_shot;
      }
      CHECK(sum == d);
      CHECK(sum <= 15);
    } else {
      REQUIRE(next_shot < shot_prompts.size());
      CHECK(contains(in["prompt"].get<std::string>(), shot_prompts[next_shot]));
      ++next_shot;
    }
  }
  CHECK(next_shot == shot_prompts.size());  // nothing dropped
  CHECK(total_seconds == 60);
  CHECK(p.doc["total_usd"].get<double>() == Approx(60 * 0.168));

  // Camera phrases and dialogue are rendered into the shot prompts.
  std::string all;
  for (auto& job : jobs) all += join(prompts_of(job["input"])) + "\n";
  CHECK(contains(all, "[Mara, whispering]: \"come on, come on\""));
  CHECK(contains(all, "[Joe, calm]: \"you're late\""));
  CHECK(contains(all, "[Guard, shouting]: \"who's there?\""));
  CHECK(contains(all, "Establishing shot"));
}

TEST_CASE("plan --json storyboard_60s -- --plan: storyboard.plan prices without submitting", "[plan][examples][storyboard]") {
  TempDir dir;
  Plan full = plan_json(dir, "storyboard_60s");
  TempDir dir2;
  Plan p = plan_json(dir2, "storyboard_60s", {"--plan"});
  CHECK(p.doc["jobs"].empty());
  CHECK(p.doc["total_usd"].get<double>() == Approx(0.0));
  char want[64];
  std::snprintf(want, sizeof want, "%zu generations, $%.2f", full.doc["jobs"].size(), full.doc["total_usd"].get<double>());
  CHECK(contains(p.res.err, want));
}

TEST_CASE("plan --json budgeted: kling.cost keeps the plan within the script's budget", "[plan][examples][budget]") {
  TempDir dir;
  SECTION("default $2.00") {
    Plan p = plan_json(dir, "budgeted");
    REQUIRE(p.doc["jobs"].size() == 3);
    CHECK(p.doc["total_usd"].get<double>() == Approx(3 * 0.63));
    CHECK(p.doc["total_usd"].get<double>() <= 2.0);
    for (auto& job : p.doc["jobs"]) CHECK(job["endpoint"] == "fal-ai/kling-video/v3/standard/text-to-video");
    CHECK(contains(p.res.err, "skip idea_4"));
  }
  SECTION("$5 from the script argument takes all five") {
    Plan p = plan_json(dir, "budgeted", {"5"});
    CHECK(p.doc["jobs"].size() == 5);
  }
}

TEST_CASE("plan --json parallel_spawn: two spawned pipelines run side by side", "[plan][examples][spawn]") {
  TempDir dir;
  Plan p = plan_json(dir, "parallel_spawn");
  REQUIRE(p.doc["jobs"].size() == 4);
  std::map<std::string, size_t> pos;
  for (size_t i = 0; i < p.doc["jobs"].size(); ++i) pos[p.doc["jobs"][i]["name"]] = i;
  for (auto n : {"forest_wide", "forest_close", "harbor_wide", "harbor_close"}) REQUIRE(pos.count(n));
  // Each pipeline is sequential...
  CHECK(pos["forest_wide"] < pos["forest_close"]);
  CHECK(pos["harbor_wide"] < pos["harbor_close"]);
  // ...but the two run at once: both wide shots are submitted before either close-up.
  CHECK(pos["harbor_wide"] < pos["forest_close"]);
  CHECK(pos["forest_wide"] < pos["harbor_close"]);
  CHECK(p.doc["total_usd"].get<double>() == Approx(4 * 0.84));
  CHECK(contains(p.res.err, "forest done: forest_wide + forest_close"));
  CHECK(contains(p.res.err, "harbor done: harbor_wide + harbor_close"));
}

TEST_CASE("plan --json: flags before or after the script, --out moves plan.json", "[plan][args]") {
  TempDir dir;
  Result a = dir.run({"plan", "--json", example("t2v_single")});
  REQUIRE(a.exit_code == 0);
  json ja = json::parse(a.out);
  Result b = dir.run({"plan", "--out", "elsewhere", example("t2v_single"), "--json"});
  REQUIRE(b.exit_code == 0);
  CHECK(json::parse(b.out)["jobs"] == ja["jobs"]);
  CHECK(fs::exists(dir / "elsewhere/t2v_single/plan.json"));
  CHECK(json::parse(read_file(dir / "elsewhere/t2v_single/plan.json"))["jobs"] == ja["jobs"]);
}

TEST_CASE("plan (table): header, one row per job, a total row", "[plan][table]") {
  auto check_table = [](const std::string& stem, size_t njobs, int seconds, const std::string& total_cost,
                        const std::string& ep, const std::string& audio, const std::string& row_cost) {
    TempDir dir;
    Result r = dir.run({"plan", example(stem)});
    INFO(stem << " stdout:\n" << r.out << "\nstderr:\n" << r.err);
    REQUIRE(r.exit_code == 0);
    auto ls = lines(r.out);
    size_t h = 0;
    while (h < ls.size() && !matches(ls[h], "^job\\s+endpoint\\s+secs\\s+audio\\s+cost\\s*$")) ++h;
    REQUIRE(h < ls.size());
    REQUIRE(ls.size() >= h + njobs + 2);
    std::set<std::string> names;
    for (size_t i = h + 1; i <= h + njobs; ++i) {
      INFO("row: " << ls[i]);
      std::smatch m;
      REQUIRE(std::regex_match(ls[i], m, std::regex("^(\\S+)\\s+(\\S+)\\s+(\\d+)\\s+(on|off|voice)\\s+(\\$[0-9.]+)$")));
      CHECK(m[1].str() != "total");
      names.insert(m[1].str());
      CHECK(m[2].str() == ep);
      CHECK(m[4].str() == audio);
      CHECK(m[5].str() == row_cost);
    }
    CHECK(names.size() == njobs);
    INFO("total row: " << ls[h + njobs + 1]);
    CHECK(matches(ls[h + njobs + 1], "^total\\s+" + std::to_string(njobs) + " jobs\\s+" + std::to_string(seconds) + "\\s+\\" +
                                         total_cost + "$"));
    CHECK(h + njobs + 2 == ls.size());  // nothing after the total
  };
  SECTION("t2v_single") { check_table("t2v_single", 1, 5, "$0.84", "v3/pro/text-to-video", "on", "$0.84"); }
  SECTION("procedural") { check_table("procedural", 12, 60, "$5.04", "v3/standard/text-to-video", "off", "$0.42"); }
  SECTION("parallel_spawn") { check_table("parallel_spawn", 4, 20, "$3.36", "v3/pro/text-to-video", "on", "$0.84"); }
}
