#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "fakefal_process.h"
#include "net/download.h"
#include "net/fal_queue.h"
#include "net/sha256.h"
#include "net/storage.h"
#include "files.h"

using namespace kr::net;
using json = nlohmann::json;
using kr::test::FakeFal;
using kr::test::run_idle;
using kr::test::run_until;
namespace fs = std::filesystem;

using krt::TempDir;

namespace {


std::string write_file(const fs::path& p, const std::string& data) {
  std::ofstream(p, std::ios::binary) << data;
  return p.string();
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The fake's video: block i = sha256("<request_id>:<i>") raw, concatenated, cut to size.
std::string fake_video(const std::string& rid, std::size_t size) {
  std::string out;
  for (std::size_t i = 0; out.size() < size; ++i) {
    std::string hex = sha256_hex(rid + ":" + std::to_string(i));
    for (std::size_t k = 0; k < hex.size(); k += 2) out += static_cast<char>(std::stoi(hex.substr(k, 2), nullptr, 16));
  }
  out.resize(size);
  return out;
}

Storage::Options fast_storage() {
  Storage::Options o;
  o.policy.base_ms = 20;
  o.policy.cap_ms = 100;
  return o;
}

Downloader::Options fast_download() {
  Downloader::Options o;
  o.policy.base_ms = 20;
  o.policy.cap_ms = 100;
  return o;
}

// Runs one job on the fake and returns its output (video url, size) and request id.
std::pair<json, std::string> make_video(FakeFal& fake, Loop& loop, int bytes) {
  FalQueue q(loop, fake.config());
  std::optional<json> out;
  std::string rid;
  JobCallbacks cb;
  cb.on_result = [&](json o, const ResultMeta& m) {
    out = std::move(o);
    rid = m.request_id;
  };
  cb.on_error = [&](const FalError& e) { FAIL(e.describe()); };
  q.start("fal-ai/kling-video/v3/pro/text-to-video",
          {{"prompt", "[[video_bytes=" + std::to_string(bytes) + "]] v"}}, cb);
  REQUIRE(run_until(loop, [&] { return out.has_value(); }));
  return {*out, rid};
}

}  // namespace

TEST_CASE("sha256 of a file is streamed and matches the one-shot digest", "[net][sha]") {
  TempDir d;
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::string data(3'000'000, 'q');
  data[12345] = 'z';
  auto p = write_file(d.path() / "f.bin", data);
  CHECK(*sha256_file(p) == sha256_hex(data));
  CHECK_FALSE(sha256_file((d.path() / "missing").string()));
}

TEST_CASE("upload: a small file goes up in one PUT and can be fetched back", "[net][storage][fake]") {
  FakeFal fake({"--key", "test:secret"});
  TempDir d;
  std::string data = "hello image bytes \x01\x02\x03";
  auto path = write_file(d.path() / "ref.png", data);
  Loop loop;
  Storage st(loop, fake.config(), fast_storage());
  std::optional<Result<std::string>> got;
  st.upload_file(path, "image/png", [&](const Result<std::string>& r) { got = r; });
  CHECK_FALSE(got);
  REQUIRE(run_until(loop, [&] { return got.has_value(); }));
  REQUIRE(got->ok());
  const std::string url = got->value();
  CHECK(url.rfind(fake.base() + "/cdn/files/", 0) == 0);

  auto ups = fake.uploads();
  REQUIRE(ups.size() == 1);
  CHECK(ups[0]["sha256"] == sha256_hex(data));
  CHECK(ups[0]["content_type"] == "image/png");
  CHECK(ups[0]["file_name"] == "ref.png");
  CHECK(ups[0]["multipart"] == false);
  CHECK(ups[0]["storage_type"] == "fal-cdn-v3");
  auto stats = fake.stats();
  CHECK(stats["requests"]["initiate"] == 1);
  CHECK(stats["requests"]["upload_put"] == 1);
  CHECK(stats["auth_missing"] == 0);  // the initiate call carried the key

  Downloader dl(loop, fast_download());
  std::optional<Result<DownloadResult>> back;
  dl.download(url, (d.path() / "back.png").string(), data.size(), [&](const Result<DownloadResult>& r) { back = r; });
  REQUIRE(run_until(loop, [&] { return back.has_value(); }));
  REQUIRE(back->ok());
  CHECK(read_file(d.path() / "back.png") == data);
}

TEST_CASE("upload: the same content is uploaded once, concurrent callers share it", "[net][storage][fake]") {
  FakeFal fake;
  TempDir d;
  auto a = write_file(d.path() / "a.jpg", std::string(200000, 'A'));
  auto b = write_file(d.path() / "b.jpg", std::string(200000, 'A'));  // same bytes, other name
  auto c = write_file(d.path() / "c.jpg", std::string(200000, 'C'));
  Loop loop;
  Storage st(loop, fake.config(), fast_storage());
  std::map<std::string, std::string> url_of;
  auto upload = [&](const std::string& name, const std::string& path) {
    st.upload_file(path, "image/jpeg", [&, name](const Result<std::string>& r) {
      REQUIRE(r.ok());
      url_of[name] = r.value();
    });
  };
  upload("a", a);
  upload("b", b);
  upload("c", c);
  REQUIRE(run_until(loop, [&] { return url_of.size() == 3; }));
  CHECK(fake.stats()["requests"]["initiate"] == 2);
  CHECK(fake.stats()["uploads"] == 2);
  CHECK(url_of["a"] == url_of["b"]);
  CHECK(url_of["a"] != url_of["c"]);

  // Later: served from the cache without a single request.
  auto before = fake.stats()["requests_total"].get<int>();
  upload("a again", a);
  REQUIRE(run_until(loop, [&] { return url_of.size() == 4; }));
  CHECK(fake.stats()["requests_total"].get<int>() == before);
  CHECK(url_of["a again"] == url_of["a"]);
  CHECK(st.cached() == 2);
  CHECK(st.cached_url(*sha256_file(a), "image/jpeg") == url_of["a"]);
}

TEST_CASE("upload: above 90 MiB the file goes up in 10 MiB parts", "[net][storage][fake]") {
  FakeFal fake;
  TempDir d;
  const std::uint64_t size = 95ull * 1024 * 1024 + 12345;
  auto path = (d.path() / "big.mp4").string();
  {
    // Sparse: mostly zeros, with marks so that part order matters.
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, static_cast<off_t>(size)) == 0);
    for (std::uint64_t off : std::initializer_list<std::uint64_t>{0, 10ull << 20, 55ull << 20, size - 5}) {
      std::string mark = "M" + std::to_string(off);
      REQUIRE(::pwrite(fd, mark.data(), std::min<std::size_t>(mark.size(), size - off), static_cast<off_t>(off)) > 0);
    }
    ::close(fd);
  }
  Loop loop;
  Storage st(loop, fake.config(), fast_storage());
  std::optional<Result<std::string>> got;
  st.upload_file(path, "video/mp4", [&](const Result<std::string>& r) { got = r; });
  REQUIRE(run_until(loop, [&] { return got.has_value(); }, 120));
  INFO((got->ok() ? "" : got->error().describe()));
  REQUIRE(got->ok());
  auto ups = fake.uploads();
  REQUIRE(ups.size() == 1);
  CHECK(ups[0]["multipart"] == true);
  CHECK(ups[0]["size"] == size);
  CHECK(ups[0]["sha256"] == *sha256_file(path));
  auto stats = fake.stats();
  CHECK(stats["upload_parts"] == 10);
  CHECK(stats["requests"]["upload_complete"] == 1);
}

TEST_CASE("upload: failures are reported, not cached", "[net][storage][fake]") {
  FakeFal fake;
  TempDir d;
  auto path = write_file(d.path() / "x.bin", "data");
  Loop loop;
  auto opt = fast_storage();
  opt.policy.max_retries = 1;
  Storage st(loop, fake.config(), opt);
  fake.fault({{"route", "upload_put"}, {"action", "status"}, {"code", 503}, {"times", 2}});
  std::optional<Result<std::string>> got;
  st.upload_file(path, "application/octet-stream", [&](const Result<std::string>& r) { got = r; });
  REQUIRE(run_until(loop, [&] { return got.has_value(); }));
  REQUIRE_FALSE(got->ok());
  CHECK(got->error().http_status == 503);
  CHECK(st.cached() == 0);

  got.reset();
  st.upload_file((d.path() / "nope").string(), "image/png", [&](const Result<std::string>& r) { got = r; });
  REQUIRE(run_until(loop, [&] { return got.has_value(); }));
  REQUIRE_FALSE(got->ok());

  got.reset();
  st.upload_file(path, "application/octet-stream", [&](const Result<std::string>& r) { got = r; });
  REQUIRE(run_until(loop, [&] { return got.has_value(); }));
  CHECK(got->ok());  // faults used up: the retry of the same content succeeds
}

TEST_CASE("download: complete file, size and hash checked", "[net][download][fake]") {
  FakeFal fake;
  TempDir d;
  Loop loop;
  auto [out, rid] = make_video(fake, loop, 200000);
  const std::string url = out["video"]["url"];
  const std::uint64_t size = out["video"]["file_size"];
  CHECK(size == 200000);
  Downloader dl(loop, fast_download());
  std::optional<Result<DownloadResult>> got;
  std::uint64_t last_progress = 0;
  std::optional<std::uint64_t> total_seen;
  auto dest = d.path() / "out" / "shot1" / "video.mp4";  // parent directories are created
  dl.download(url, dest.string(), size, [&](const Result<DownloadResult>& r) { got = r; },
              [&](std::uint64_t b, std::optional<std::uint64_t> t) {
                CHECK(b >= last_progress);
                last_progress = b;
                total_seen = t;
              });
  REQUIRE(run_until(loop, [&] { return got.has_value(); }));
  REQUIRE(got->ok());
  std::string expect = fake_video(rid, size);
  CHECK(got->value().bytes == size);
  CHECK(got->value().path == dest.string());
  CHECK(got->value().sha256 == sha256_hex(expect));
  CHECK(read_file(dest) == expect);
  CHECK_FALSE(fs::exists(dest.string() + ".part"));
  CHECK(last_progress == size);
  CHECK(total_seen == size);
  CHECK(fake.stats()["downloads"] == 1);
}

TEST_CASE("download: wrong expected size leaves no file", "[net][download][fake]") {
  FakeFal fake;
  TempDir d;
  Loop loop;
  auto [out, rid] = make_video(fake, loop, 5000);
  Downloader dl(loop, fast_download());
  for (std::uint64_t wrong : {4000ull, 6000ull}) {
    std::optional<Result<DownloadResult>> got;
    auto dest = d.path() / ("v" + std::to_string(wrong) + ".mp4");
    dl.download(out["video"]["url"], dest.string(), wrong, [&](const Result<DownloadResult>& r) { got = r; });
    REQUIRE(run_until(loop, [&] { return got.has_value(); }));
    REQUIRE_FALSE(got->ok());
    CHECK(got->error().kind == FalError::Kind::download);
    CHECK_FALSE(fs::exists(dest));
    CHECK_FALSE(fs::exists(dest.string() + ".part"));
  }
}

TEST_CASE("download: truncated body is retried, and if it stays truncated leaves no file", "[net][download][fake]") {
  FakeFal fake;
  TempDir d;
  Loop loop;
  auto [out, rid] = make_video(fake, loop, 300000);
  const std::string url = out["video"]["url"];
  auto opt = fast_download();
  opt.policy.max_retries = 2;
  Downloader dl(loop, opt);

  SECTION("once: the retry completes the file") {
    fake.fault({{"route", "cdn"}, {"action", "truncate"}});
    std::optional<Result<DownloadResult>> got;
    auto dest = d.path() / "ok.mp4";
    dl.download(url, dest.string(), std::nullopt, [&](const Result<DownloadResult>& r) { got = r; });
    REQUIRE(run_until(loop, [&] { return got.has_value(); }));
    REQUIRE(got->ok());
    CHECK(read_file(dest) == fake_video(rid, 300000));
    CHECK(fake.stats()["requests"]["cdn"] == 2);
  }
  SECTION("always: an error and nothing at the destination") {
    fake.fault({{"route", "cdn"}, {"action", "truncate"}, {"times", 10}});
    std::optional<Result<DownloadResult>> got;
    auto dest = d.path() / "bad.mp4";
    dl.download(url, dest.string(), 300000, [&](const Result<DownloadResult>& r) { got = r; });
    REQUIRE(run_until(loop, [&] { return got.has_value(); }));
    REQUIRE_FALSE(got->ok());
    CHECK(got->error().kind == FalError::Kind::download);
    CHECK(got->error().message.find("truncated") != std::string::npos);
    CHECK_FALSE(fs::exists(dest));
    CHECK_FALSE(fs::exists(dest.string() + ".part"));
    CHECK(fake.stats()["requests"]["cdn"] == 3);
  }
}

TEST_CASE("download: 5xx retried, 404 not", "[net][download][fake]") {
  FakeFal fake;
  TempDir d;
  Loop loop;
  auto [out, rid] = make_video(fake, loop, 1000);
  Downloader dl(loop, fast_download());
  fake.fault({{"route", "cdn"}, {"action", "status"}, {"code", 503}});
  std::optional<Result<DownloadResult>> got;
  dl.download(out["video"]["url"], (d.path() / "a.mp4").string(), 1000, [&](const Result<DownloadResult>& r) { got = r; });
  REQUIRE(run_until(loop, [&] { return got.has_value(); }));
  CHECK(got->ok());
  CHECK(fake.stats()["requests"]["cdn"] == 2);

  got.reset();
  auto dest = d.path() / "missing.mp4";
  dl.download(fake.base() + "/cdn/videos/nope.mp4", dest.string(), std::nullopt,
              [&](const Result<DownloadResult>& r) { got = r; });
  REQUIRE(run_until(loop, [&] { return got.has_value(); }));
  REQUIRE_FALSE(got->ok());
  CHECK(got->error().http_status == 404);
  CHECK(fake.stats()["requests"]["cdn"] == 3);
  CHECK_FALSE(fs::exists(dest));
}

TEST_CASE("download: cancelled from its progress callback, it leaves nothing behind", "[net][download][fake]") {
  FakeFal fake;
  TempDir d;
  Loop loop;
  auto [out, rid] = make_video(fake, loop, 3 << 20);
  Downloader dl(loop, fast_download());
  bool called = false;
  Downloader::Id id = 0;
  auto dest = d.path() / "c.mp4";
  id = dl.download(out["video"]["url"], dest.string(), std::nullopt, [&](const Result<DownloadResult>&) { called = true; },
                   [&](std::uint64_t bytes, std::optional<std::uint64_t>) {
                     if (bytes > 0) CHECK(dl.cancel(id));
                   });
  CHECK(run_idle(loop));
  CHECK_FALSE(called);
  CHECK(dl.active() == 0);
  CHECK_FALSE(fs::exists(dest));
  CHECK_FALSE(fs::exists(dest.string() + ".part"));
}

TEST_CASE("download: transfers take their turn in order, and a stalled one lends its slot", "[net][download][fake]") {
  FakeFal fake;
  TempDir d;
  Loop loop;
  std::vector<std::pair<json, std::string>> videos;
  for (int i = 0; i < 3; ++i) videos.push_back(make_video(fake, loop, 400000));
  auto opt = fast_download();
  opt.max_transfers = 1;
  std::unique_ptr<Downloader> dl;
  std::vector<int> finished;   // download index, in the order the files were complete
  std::vector<int> receiving;  // download index of each progress call, in order
  auto start = [&](int i) {
    dl->download(videos[i].first["video"]["url"], (d.path() / (std::to_string(i) + ".mp4")).string(), 400000,
                 [&, i](const Result<DownloadResult>& r) {
                   CHECK(r.ok());
                   finished.push_back(i);
                 },
                 [&, i](std::uint64_t, std::optional<std::uint64_t>) { receiving.push_back(i); });
  };

  SECTION("in order: the bytes of one download never interleave with the next one's") {
    opt.slot_stall_ms = 60000;  // however slow the machine, nothing counts as stalled
    dl = std::make_unique<Downloader>(loop, opt);
    for (int i = 0; i < 3; ++i) start(i);
    REQUIRE(run_until(loop, [&] { return finished.size() == 3; }));
    CHECK(std::is_sorted(receiving.begin(), receiving.end()));
    CHECK(receiving.front() == 0);
  }
  SECTION("the first one stalls: the others do not wait for it") {
    opt.slot_stall_ms = 300;
    dl = std::make_unique<Downloader>(loop, opt);
    fake.fault({{"route", "cdn"}, {"action", "stall"}, {"ms", 3000}});
    for (int i = 0; i < 3; ++i) start(i);
    REQUIRE(run_until(loop, [&] { return finished.size() == 3; }));
    CHECK(finished.back() == 0);  // 3 s late; 1 and 2 went ahead after 300 ms
  }
  for (int i = 0; i < 3; ++i)
    CHECK(read_file(d.path() / (std::to_string(i) + ".mp4")) == fake_video(videos[i].second, 400000));
}
