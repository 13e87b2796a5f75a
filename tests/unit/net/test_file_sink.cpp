// FileSink under a burst: many files queued faster than they can be hashed, so its thread takes
// them in batches and hashes several side by side (net/sha256_lanes.h). Every file must still
// land whole under its name with its own SHA-256, and a discarded one must leave nothing.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "fakefal_process.h"
#include "net/file_sink.h"
#include "files.h"
#include "sha256.h"

using namespace kr::net;
using kr::test::run_until;
using krt::TempDir;

namespace {
std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

TEST_CASE("file sink: a burst of files lands whole, each with its own SHA-256", "[net][sink]") {
  // 40 files: enough for the lanes; 3, one of them discarded: the two left are hashed one by
  // one, each finished as soon as it is.
  for (auto [threads, n] : {std::pair{1u, 40}, std::pair{2u, 40}, std::pair{1u, 3}}) {
    INFO(threads << " thread(s), " << n << " files");
    TempDir d;
    Loop loop;
    FileSink sink(loop, threads);
    std::mt19937 rng(42 + threads + n);
    std::vector<std::string> data(n);
    std::vector<FileSink::FileRef> files(n);
    std::vector<std::size_t> at(n, 0);
    for (int i = 0; i < n; ++i) {
      data[i].resize(i % 7 == 0 ? rng() % 100 : rng() % 700000);  // some within one block
      for (auto& c : data[i]) c = static_cast<char>(rng());
      const std::string part = (d / ("v" + std::to_string(i) + ".part")).string();
      files[i] = sink.open(::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), part);
    }
    // Chunks of every file interleaved, as from transfers running side by side.
    for (bool more = true; more;) {
      more = false;
      for (int i = 0; i < n; ++i) {
        if (at[i] >= data[i].size()) continue;
        const std::size_t len = std::min<std::size_t>(data[i].size() - at[i], 1 + rng() % 40000);
        REQUIRE(sink.write(files[i], std::string_view(data[i]).substr(at[i], len)));
        at[i] += len;
        more = true;
      }
    }
    const int dropped = n > 5 ? 5 : 1;  // one file is discarded instead of finished
    std::map<int, FileSink::Outcome> got;
    for (int i = 0; i < n; ++i) {
      if (i == dropped) {
        sink.discard(files[i]);
        continue;
      }
      sink.finish(files[i], (d / ("v" + std::to_string(i) + ".mp4")).string(),
                  [&got, i](const FileSink::Outcome& o) { got[i] = o; });
    }
    REQUIRE(run_until(loop, [&] { return static_cast<int>(got.size()) == n - 1; }));
    for (int i = 0; i < n; ++i) {
      INFO("file " << i << ", " << data[i].size() << " bytes");
      const auto dest = d / ("v" + std::to_string(i) + ".mp4");
      CHECK_FALSE(std::filesystem::exists(d / ("v" + std::to_string(i) + ".part")));
      if (i == dropped) {
        CHECK_FALSE(std::filesystem::exists(dest));
        continue;
      }
      CHECK(got[i].error.empty());
      CHECK(got[i].sha256 == krt::sha256_hex(data[i]));
      CHECK(read_all(dest) == data[i]);
    }
  }
}
