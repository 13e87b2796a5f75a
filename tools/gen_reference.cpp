// gen_reference DATA_DIR DOCS_DIR [--check]: writes DOCS_DIR/endpoints.md from the data, or with
// --check exits 1 (naming the first line that differs) when the committed file is stale.
#include <fstream>
#include <iostream>
#include <sstream>

#include "reference.h"

namespace {
std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: gen_reference DATA_DIR DOCS_DIR [--check]\n";
    return 2;
  }
  std::string data = argv[1], docs = argv[2];
  bool check = argc > 3 && std::string(argv[3]) == "--check";
  try {
    auto text = kr::docs::render_endpoint_reference(nlohmann::json::parse(slurp(data + "/endpoints.json")),
                                                    nlohmann::json::parse(slurp(data + "/prices.json")),
                                                    kr::docs::source_anchors(slurp(docs + "/sources.md")));
    std::string out = docs + "/endpoints.md";
    if (check) {
      std::string old;
      try { old = slurp(out); } catch (const std::exception&) {}
      if (old == text) return 0;
      std::istringstream a(old), b(text);
      std::string la, lb;
      int line = 0;
      while (true) {
        ++line;
        bool ga = bool(std::getline(a, la)), gb = bool(std::getline(b, lb));
        if (!ga && !gb) break;
        if (la != lb || ga != gb) {
          std::cerr << out << " is stale at line " << line << ":\n  committed: " << (ga ? la : "(end of file)")
                    << "\n  generated: " << (gb ? lb : "(end of file)")
                    << "\nRegenerate it with `cmake --build build --target docs` and commit it.\n";
          break;
        }
      }
      return 1;
    }
    std::ofstream(out, std::ios::binary) << text;
    std::cout << "wrote " << out << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "gen_reference: " << e.what() << "\n";
    return 1;
  }
}
