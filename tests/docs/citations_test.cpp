// Every citation in the repository resolves inside it: `docs/<file>.md#<anchor>` names a file in
// docs/ and an anchor in that file, every relative link in a Markdown file reaches its target,
// and nothing cites the reference documents the project started from, which are not in the
// repository (a contributor who clones it could not follow them).
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <unistd.h>

namespace fs = std::filesystem;

namespace {

const fs::path root = KR_SOURCE_DIR;

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool skipped_dir(const fs::path& p) {
  const std::string name = p.filename().string();
  return name == "node_modules" || name == ".git" || name.rfind("build", 0) == 0;
}

// The repository's text files (sources, scripts, data, docs, tests), without build trees,
// installed npm packages and binary files.
std::vector<fs::path> repo_files() {
  std::vector<fs::path> out;
  for (const char* top : {"README.md", "CMakeLists.txt"})
    if (fs::exists(root / top)) out.push_back(root / top);
  for (const char* dir : {"src", "include", "lua-lib", "tests", "data", "scripts", "bench", "docs", "tools", ".ci", "examples"}) {
    if (!fs::is_directory(root / dir)) continue;
    for (auto it = fs::recursive_directory_iterator(root / dir); it != fs::recursive_directory_iterator(); ++it) {
      if (it->is_directory() && skipped_dir(it->path())) { it.disable_recursion_pending(); continue; }
      if (!it->is_regular_file() || it->file_size() > (4u << 20)) continue;
      std::string head = slurp(it->path()).substr(0, 8192);
      if (head.find('\0') != std::string::npos) continue;
      out.push_back(it->path());
    }
  }
  return out;
}

std::string rel(const fs::path& p) { return fs::relative(p, root).string(); }

int line_of(const std::string& text, std::size_t pos) { return 1 + static_cast<int>(std::count(text.begin(), text.begin() + pos, '\n')); }

// GitHub's heading anchors: lower case, punctuation dropped, spaces become '-'; repeats get -1, -2.
std::set<std::string> anchors_of(const std::string& md) {
  std::set<std::string> out;
  static const std::regex explicit_anchor(R"re(<a (?:id|name)="([^"]+)")re");
  for (auto it = std::sregex_iterator(md.begin(), md.end(), explicit_anchor); it != std::sregex_iterator(); ++it) out.insert((*it)[1]);
  std::map<std::string, int> seen;
  std::istringstream in(md);
  bool fence = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("```", 0) == 0) fence = !fence;
    if (fence || line.empty() || line[0] != '#') continue;
    std::size_t i = line.find_first_not_of('#');
    if (i == std::string::npos || line[i] != ' ') continue;
    std::string slug;
    for (char c : line.substr(i + 1)) {
      unsigned char u = static_cast<unsigned char>(c);
      if (std::isalnum(u)) slug += static_cast<char>(std::tolower(u));
      else if (c == ' ' || c == '-') slug += '-';
      else if (c == '_' || u >= 0x80) slug += c;
    }
    int n = seen[slug]++;
    out.insert(n ? slug + "-" + std::to_string(n) : slug);
  }
  return out;
}

struct Problems {
  std::vector<std::string> lines;
  void add(const fs::path& f, const std::string& text, std::size_t pos, const std::string& what) {
    lines.push_back(rel(f) + ":" + std::to_string(line_of(text, pos)) + ": " + what);
  }
  std::string joined() const {
    std::string s;
    for (auto& l : lines) s += l + "\n";
    return s;
  }
};

// Checks that `target` (a path relative to `from_dir`, with an optional #anchor) exists.
void check_target(const fs::path& file, const std::string& text, std::size_t pos, const fs::path& from_dir, const std::string& target,
                  Problems& p) {
  std::string path = target, anchor;
  if (auto h = target.find('#'); h != std::string::npos) { path = target.substr(0, h); anchor = target.substr(h + 1); }
  fs::path resolved = path.empty() ? file : (from_dir / path).lexically_normal();
  if (!path.empty() && !fs::exists(resolved)) { p.add(file, text, pos, target + ": no such file in the repository"); return; }
  auto rootless = fs::relative(resolved, root).string();
  if (rootless.rfind("..", 0) == 0) { p.add(file, text, pos, target + ": points outside the repository"); return; }
  if (!anchor.empty() && resolved.extension() == ".md" && !anchors_of(slurp(resolved)).count(anchor))
    p.add(file, text, pos, target + ": " + rel(resolved) + " has no anchor #" + anchor);
}

Problems scan() {
  Problems p;
  // Spelled in pieces so this file does not match itself.
  const std::vector<std::pair<std::string, std::string>> outside = {
      {std::string("kling-") + "api.md", "the Kling API reference outside the repository; cite docs/endpoints.md, docs/validation.md or docs/prices.md"},
      {std::string("DESIGN") + ".md", "the design note outside the repository; cite docs/architecture.md"},
      {std::string("../") + "shared", "a path outside the repository"},
      {std::string("/work/") + "shared", "a path outside the repository"},
      {std::string("shared/") + "seeds", "the seed documents outside the repository; cite docs/sources.md"},
      {std::string("\xC2") + "\xA7", "a section number of a document outside the repository; cite a docs/ anchor"},
      {std::string("\\u00") + "a7", "a section number of a document outside the repository; cite a docs/ anchor"},
  };
  static const std::regex docs_ref(R"((^|[^A-Za-z0-9_./-])docs/([A-Za-z0-9_./-]+\.md)(#[A-Za-z0-9_-]+)?)");
  static const std::regex md_link(R"(\]\(([^)\s]+)\))");
  const std::string protocol = std::string("fal-") + "protocol.md";
  for (const fs::path& f : repo_files()) {
    const std::string text = slurp(f);
    const bool in_docs = rel(f).rfind("docs/", 0) == 0;
    for (auto& [needle, why] : outside)
      for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) p.add(f, text, pos, why);
    if (!in_docs)
      for (auto pos = text.find(protocol); pos != std::string::npos; pos = text.find(protocol, pos + 1))
        if (pos < 5 || text.compare(pos - 5, 5, "docs/") != 0) p.add(f, text, pos, protocol + " without docs/: cite docs/" + protocol);
    for (auto it = std::sregex_iterator(text.begin(), text.end(), docs_ref); it != std::sregex_iterator(); ++it) {
      std::size_t pos = static_cast<std::size_t>(it->position(2));
      check_target(f, text, pos, root / "docs", (*it)[2].str() + (*it)[3].str(), p);
    }
    if (f.extension() == ".md") {
      for (auto it = std::sregex_iterator(text.begin(), text.end(), md_link); it != std::sregex_iterator(); ++it) {
        std::string target = (*it)[1];
        if (target.rfind("http://", 0) == 0 || target.rfind("https://", 0) == 0 || target.rfind("mailto:", 0) == 0) continue;
        check_target(f, text, static_cast<std::size_t>(it->position(1)), f.parent_path(), target, p);
      }
    }
  }
  return p;
}

}  // namespace

TEST_CASE("every citation resolves inside the repository", "[docs]") {
  Problems p = scan();
  INFO(p.joined());
  CHECK(p.lines.empty());
}

TEST_CASE("the citation check sees the repository and the anchors of docs/", "[docs]") {
  // Guards the test above against passing because it looked at nothing.
  auto files = repo_files();
  CHECK(files.size() > 100);
  auto has = [&](const char* r) { return std::any_of(files.begin(), files.end(), [&](auto& f) { return rel(f) == r; }); };
  CHECK(has("src/core/validate.cpp"));
  CHECK(has("docs/validation.md"));
  CHECK(has("lua-lib/kling/storyboard.lua"));
  auto anchors = anchors_of(slurp(root / "docs/validation.md"));
  CHECK(anchors.count("r8"));
  CHECK(anchors.count("validation-rules"));  // from the heading "# Validation rules"
  CHECK_FALSE(anchors.count("r99"));
}

TEST_CASE("the citation check catches what it must", "[docs]") {
  auto tmp = fs::temp_directory_path() / ("kr_citations_" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  Problems p;
  const std::string d = "docs";  // spelled apart so the scan of this file does not see these
  std::string text = "see " + d + "/validation.md#r99 and " + d + "/nowhere.md and " + d + "/validation.md#r8";
  const std::regex ref(R"(docs/([a-z]+\.md)(#[a-z0-9]+)?)");
  for (std::sregex_iterator it(text.begin(), text.end(), ref), end; it != end; ++it)
    check_target(tmp / "x.cpp", text, static_cast<std::size_t>(it->position()), root / "docs", (*it)[1].str() + (*it)[2].str(), p);
  REQUIRE(p.lines.size() == 2);
  CHECK_THAT(p.lines[0], Catch::Contains("has no anchor #r99"));
  CHECK_THAT(p.lines[1], Catch::Contains("no such file"));
  Problems outside;
  check_target(tmp / "x.md", text, 0, root / "docs", "../../outside.md", outside);
  CHECK(outside.lines.size() == 1);
  fs::remove_all(tmp);
}
