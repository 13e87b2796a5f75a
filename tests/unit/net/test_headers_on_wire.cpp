// What actually goes on the wire: headers, and where the key is (not) sent. A tiny blocking
// HTTP server on a thread records every request and answers from a handler.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "fakefal_process.h"
#include "net/download.h"
#include "net/fal_queue.h"
#include "net/storage.h"

using namespace kr::net;
using json = nlohmann::json;
using kr::test::run_until;

namespace {

struct Captured {
  std::string method, path;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

class CaptureServer {
 public:
  using Handler = std::function<std::string(const Captured&)>;  // returns the raw response

  explicit CaptureServer(Handler h) : handler_(std::move(h)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(fd_, 16);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    base_ = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    thread_ = std::thread([this] { serve(); });
  }
  ~CaptureServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  const std::string& base() const { return base_; }
  std::vector<Captured> requests() {
    std::lock_guard<std::mutex> g(m_);
    return reqs_;
  }

  static std::string reply(int code, const std::string& body, const std::string& type = "application/json",
                           const std::string& extra = "") {
    return "HTTP/1.1 " + std::to_string(code) + " X\r\nContent-Type: " + type +
           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n" + extra + "\r\n" + body;
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      std::string buf;
      char tmp[65536];
      std::size_t header_end;
      while ((header_end = buf.find("\r\n\r\n")) == std::string::npos) {
        ssize_t n = read(c, tmp, sizeof tmp);
        if (n <= 0) break;
        buf.append(tmp, static_cast<std::size_t>(n));
      }
      if (header_end == std::string::npos) {
        close(c);
        continue;
      }
      Captured r;
      std::string head = buf.substr(0, header_end);
      std::size_t line_end = head.find("\r\n");
      std::string first = head.substr(0, line_end);
      r.method = first.substr(0, first.find(' '));
      r.path = first.substr(first.find(' ') + 1, first.rfind(' ') - first.find(' ') - 1);
      std::size_t pos = line_end + 2;
      while (pos < head.size() && line_end != std::string::npos) {
        std::size_t e = head.find("\r\n", pos);
        std::string line = head.substr(pos, e == std::string::npos ? std::string::npos : e - pos);
        auto colon = line.find(':');
        if (colon != std::string::npos) {
          std::string name = line.substr(0, colon);
          for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          std::string value = line.substr(colon + 1);
          while (!value.empty() && value.front() == ' ') value.erase(0, 1);
          r.headers[name] = value;
        }
        if (e == std::string::npos) break;
        pos = e + 2;
      }
      std::size_t want = r.headers.count("content-length") ? std::stoul(r.headers["content-length"]) : 0;
      r.body = buf.substr(header_end + 4);
      while (r.body.size() < want) {
        ssize_t n = read(c, tmp, sizeof tmp);
        if (n <= 0) break;
        r.body.append(tmp, static_cast<std::size_t>(n));
      }
      std::string resp = handler_(r);
      {
        std::lock_guard<std::mutex> g(m_);
        reqs_.push_back(r);
      }
      for (std::size_t off = 0; off < resp.size();) {
        ssize_t n = write(c, resp.data() + off, resp.size() - off);
        if (n <= 0) break;
        off += static_cast<std::size_t>(n);
      }
      close(c);
    }
  }

  Handler handler_;
  int fd_ = -1;
  std::string base_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex m_;
  std::vector<Captured> reqs_;
};

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

}  // namespace

TEST_CASE("wire: API calls carry key, JSON headers and user agent, follow-up URLs are built, not taken",
          "[net][wire]") {
  std::string base;
  CaptureServer srv([&](const Captured& r) -> std::string {
    if (r.method == "POST") {
      // Answer URLs that point elsewhere: the client must not follow them with its key.
      json j = {{"status", "IN_QUEUE"},
                {"request_id", "req-1"},
                {"status_url", "http://127.0.0.2:9/steal/status"},
                {"response_url", "http://127.0.0.2:9/steal"},
                {"cancel_url", "http://127.0.0.2:9/steal/cancel"}};
      return CaptureServer::reply(200, j.dump());
    }
    if (r.path.find("/status/stream") != std::string::npos) {
      return CaptureServer::reply(200, "data: {\"status\":\"COMPLETED\",\"logs\":[]}\n\n", "text/event-stream");
    }
    return CaptureServer::reply(200, R"({"video":{"url":"x"}})", "application/json", "x-fal-billable-units: 2.5\r\n");
  });
  base = srv.base();
  Loop loop;
  FalConfig c;
  c.queue_url = base + "/queue";
  c.key = "kid:ksecret";
  FalQueue q(loop, c);
  std::optional<json> out;
  ResultMeta meta;
  JobCallbacks cb;
  cb.on_result = [&](json o, const ResultMeta& m) {
    out = o;
    meta = m;
  };
  cb.on_error = [&](const FalError& e) { FAIL(e.describe()); };
  JobOptions jo;
  jo.priority = "low";
  q.start("fal-ai/kling-video/v3/pro/text-to-video", {{"prompt", "p"}}, cb, jo);
  REQUIRE(run_until(loop, [&] { return out.has_value(); }));
  CHECK(meta.billable_units == "2.5");
  CHECK(meta.billable_units_value == Approx(2.5));

  auto reqs = srv.requests();
  REQUIRE(reqs.size() == 3);
  CHECK(reqs[0].method == "POST");
  CHECK(reqs[0].path == "/queue/fal-ai/kling-video/v3/pro/text-to-video");
  CHECK(json::parse(reqs[0].body) == json{{"prompt", "p"}});
  CHECK(reqs[0].headers["x-fal-queue-priority"] == "low");
  CHECK(reqs[1].path == "/queue/fal-ai/kling-video/requests/req-1/status/stream?logs=1");
  CHECK(reqs[1].headers["accept"].find("text/event-stream") != std::string::npos);
  CHECK(reqs[2].path == "/queue/fal-ai/kling-video/requests/req-1");
  for (auto& r : reqs) {
    CHECK(r.headers["authorization"] == "Key kid:ksecret");
    CHECK(r.headers["content-type"] == "application/json");
    CHECK(r.headers["accept"].find("application/json") != std::string::npos);
    CHECK(starts_with(r.headers["user-agent"], "klingrun/"));
  }
}

TEST_CASE("wire: a COMPLETED status with an error fails the job even when the result call answers 200",
          "[net][wire]") {
  CaptureServer srv([&](const Captured& r) -> std::string {
    if (r.method == "POST") return CaptureServer::reply(200, R"({"status":"IN_QUEUE","request_id":"req-2"})");
    if (r.path.find("/status/stream") != std::string::npos)
      return CaptureServer::reply(
          200, "data: {\"status\":\"COMPLETED\",\"error\":\"Out of GPUs\",\"error_type\":\"runner_server_error\"}\n\n",
          "text/event-stream");
    return CaptureServer::reply(200, R"({"video":{"url":"http://127.0.0.1:9/stale.mp4"}})");
  });
  Loop loop;
  FalConfig c;
  c.queue_url = srv.base() + "/queue";
  FalQueue q(loop, c);
  std::optional<FalError> err;
  bool got_result = false;
  JobCallbacks cb;
  cb.on_result = [&](json, const ResultMeta&) { got_result = true; };
  cb.on_error = [&](const FalError& e) { err = e; };
  q.start("fal-ai/kling-video/v3/pro/text-to-video", {{"prompt", "p"}}, cb);
  REQUIRE(run_until(loop, [&] { return err.has_value() || got_result; }));
  CHECK_FALSE(got_result);
  REQUIRE(err);
  CHECK(err->kind == FalError::Kind::server);
  CHECK(err->message == "Out of GPUs");
  CHECK(err->error_type == "runner_server_error");
  CHECK(err->job_failed);  // fal's verdict: a re-run must not re-attach to it
  CHECK(err->request_id == "req-2");
}

TEST_CASE("wire: cancel is a body-less PUT with the same headers", "[net][wire]") {
  CaptureServer srv([](const Captured&) { return CaptureServer::reply(202, R"({"status":"CANCELLATION_REQUESTED"})"); });
  Loop loop;
  FalConfig c;
  c.queue_url = srv.base() + "/queue";
  c.key = "a:b";
  FalQueue q(loop, c);
  std::optional<CancelOutcome> got;
  q.cancel_request("workflows/acme/flow/run", "r9", [&](const CancelOutcome& o) { got = o; });
  REQUIRE(run_until(loop, [&] { return got.has_value(); }));
  CHECK(got->ok);
  CHECK(got->fal_status == "CANCELLATION_REQUESTED");
  auto reqs = srv.requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].method == "PUT");
  CHECK(reqs[0].path == "/queue/workflows/acme/flow/requests/r9/cancel");
  CHECK(reqs[0].headers["content-length"] == "0");
  CHECK(reqs[0].headers["authorization"] == "Key a:b");
  CHECK(reqs[0].headers["content-type"] == "application/json");
}

TEST_CASE("wire: storage initiate carries the key, the signed PUT does not", "[net][wire][storage]") {
  std::string base;
  CaptureServer srv([&](const Captured& r) {
    if (r.method == "POST") {
      json j = {{"upload_url", base + "/signed/1?sig=abc"}, {"file_url", base + "/files/1/ref.png"}};
      return CaptureServer::reply(200, j.dump());
    }
    return CaptureServer::reply(200, "{}");
  });
  base = srv.base();
  char tmpl[] = "/tmp/kr_wire_XXXXXX";
  std::filesystem::path dir = mkdtemp(tmpl);
  std::ofstream(dir / "ref.png") << "PNGDATA";
  Loop loop;
  FalConfig c;
  c.rest_url = base + "/rest";
  c.key = "kid:ksecret";
  Storage st(loop, c);
  std::optional<Result<std::string>> got;
  st.upload_file((dir / "ref.png").string(), "image/png", [&](const Result<std::string>& r) { got = r; });
  REQUIRE(run_until(loop, [&] { return got.has_value(); }));
  std::filesystem::remove_all(dir);
  REQUIRE(got->ok());
  CHECK(got->value() == base + "/files/1/ref.png");
  auto reqs = srv.requests();
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[0].path == "/rest/storage/upload/initiate?storage_type=fal-cdn-v3");
  CHECK(reqs[0].headers["authorization"] == "Key kid:ksecret");
  CHECK(json::parse(reqs[0].body) == json{{"content_type", "image/png"}, {"file_name", "ref.png"}});
  CHECK(reqs[1].method == "PUT");
  CHECK(reqs[1].path == "/signed/1?sig=abc");
  CHECK(reqs[1].headers.count("authorization") == 0);
  CHECK(reqs[1].headers["content-type"] == "image/png");
  CHECK(reqs[1].body == "PNGDATA");
}

TEST_CASE("wire: multipart parts and their completion carry no key either", "[net][wire][storage]") {
  std::string base;
  CaptureServer srv([&](const Captured& r) {
    if (r.path.rfind("/rest/", 0) == 0) {
      json j = {{"upload_url", base + "/signed/big?sig=abc"}, {"file_url", base + "/files/2/big.mp4"}};
      return CaptureServer::reply(200, j.dump());
    }
    if (r.method == "PUT") return CaptureServer::reply(200, json{{"etag", "e" + std::to_string(r.body.size())}}.dump());
    return CaptureServer::reply(200, "{}");
  });
  base = srv.base();
  char tmpl[] = "/tmp/kr_wire_XXXXXX";
  std::filesystem::path dir = mkdtemp(tmpl);
  std::ofstream(dir / "big.mp4") << std::string(10, 'v');
  Loop loop;
  FalConfig c;
  c.rest_url = base + "/rest";
  c.key = "kid:ksecret";
  Storage::Options o;
  o.multipart_threshold = 4;  // 10 bytes: parts of 4, 4 and 2
  o.part_size = 4;
  Storage st(loop, c, o);
  std::optional<Result<std::string>> got;
  st.upload_file((dir / "big.mp4").string(), "video/mp4", [&](const Result<std::string>& r) { got = r; });
  REQUIRE(run_until(loop, [&] { return got.has_value(); }));
  std::filesystem::remove_all(dir);
  REQUIRE(got->ok());
  auto reqs = srv.requests();
  REQUIRE(reqs.size() == 5);  // initiate, three parts, complete
  CHECK(reqs[0].headers["authorization"] == "Key kid:ksecret");
  int parts = 0;
  for (std::size_t i = 1; i < reqs.size(); ++i) {
    INFO(reqs[i].method << " " << reqs[i].path);
    CHECK(reqs[i].path.rfind("/signed/big", 0) == 0);
    CHECK(reqs[i].headers.count("authorization") == 0);
    parts += reqs[i].method == "PUT";
  }
  CHECK(parts == 3);
}

TEST_CASE("wire: downloads send no credentials", "[net][wire][download]") {
  CaptureServer srv([](const Captured&) { return CaptureServer::reply(200, "VIDEO", "video/mp4"); });
  char tmpl[] = "/tmp/kr_wire_XXXXXX";
  std::filesystem::path dir = mkdtemp(tmpl);
  Loop loop;
  Downloader dl(loop);
  std::optional<Result<DownloadResult>> got;
  dl.download(srv.base() + "/files/v.mp4", (dir / "v.mp4").string(), 5, [&](const Result<DownloadResult>& r) { got = r; });
  REQUIRE(run_until(loop, [&] { return got.has_value(); }));
  std::filesystem::remove_all(dir);
  REQUIRE(got->ok());
  auto reqs = srv.requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].headers.count("authorization") == 0);
  CHECK(starts_with(reqs[0].headers["user-agent"], "klingrun/"));
}
