// Real fal is HTTPS only: the fake serves HTTPS with a throwaway certificate, and klingrun must
// verify it for the queue, storage and the CDN alike, trusting only what it is told to.
#include "e2e_common.h"
#include "tls.h"

using namespace e2e;

namespace {

const char* kOneJob =
    "local kling = require 'kling'\n"
    "local r = kling.generate{ name = 'secure', endpoint = 'v3/pro/t2v', duration = 5,\n"
    "  prompt = 'A lighthouse at dusk.' }\n"
    "print('url ' .. r.video.url)\n";

struct TlsFixture {
  explicit TlsFixture(std::vector<std::string> extra = {}) : fx(with_tls(tls, std::move(extra))) {}
  static std::vector<std::string> with_tls(const krt::TlsCert& t, std::vector<std::string> extra) {
    extra.insert(extra.begin(), {"--tls-cert", t.cert, "--tls-key", t.key});
    return fast_fake(std::move(extra));
  }
  krt::TempDir certs{"krt_tls"};
  krt::TlsCert tls = krt::make_tls_cert(certs.path());
  Fixture fx;
};

}  // namespace

TEST_CASE("over HTTPS a job runs end to end once klingrun trusts the certificate", "[e2e][tls]") {
  TlsFixture t;
  REQUIRE(t.fx.fake.base().rfind("https://", 0) == 0);
  krt::Env env;
  SECTION("CURL_CA_BUNDLE") { env = {{"CURL_CA_BUNDLE", t.tls.cert}, {"SSL_CERT_FILE", std::nullopt}}; }
  SECTION("SSL_CERT_FILE") { env = {{"CURL_CA_BUNDLE", std::nullopt}, {"SSL_CERT_FILE", t.tls.cert}}; }
  auto r = t.fx.script("secure.lua", kOneJob, {}, env);
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("url " + t.fx.fake.base() + "/cdn/") != std::string::npos);  // the CDN is HTTPS too
  json jobs = t.fx.fake.jobs();
  REQUIRE(jobs.size() == 1);
  const std::string video = krt::read_file(t.fx.out("secure") / "secure.mp4");
  CHECK(video == fake_video(jobs[0]["request_id"], jobs[0]["video_bytes"]));
  CHECK(t.fx.fake.stats()["downloads"] == 1);
}

TEST_CASE("over HTTPS a new connection resumes an earlier TLS session", "[e2e][tls]") {
  TlsFixture t;
  // Three jobs one after another: each submit opens a connection of its own (never a reused
  // one, see HttpRequest::fresh_connect), in a transfer of its own, after the connection before
  // it has received the server's session tickets.
  auto r = t.fx.script("three.lua",
                       "local kling = require 'kling'\n"
                       "for i = 1, 3 do\n"
                       "  kling.generate{ name = 'shot' .. i, endpoint = 'v3/pro/t2v', duration = 5,\n"
                       "    prompt = 'A lighthouse at dusk, take ' .. i .. '.' }\n"
                       "end\n",
                       {}, {{"CURL_CA_BUNDLE", t.tls.cert}});
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  json stats = t.fx.fake.stats();
  INFO("stats: " << stats.dump());
  CHECK(stats["jobs_created"] == 3);
  CHECK(stats["tls_handshakes"] >= 3);
  // At least the second submit resumes the first connection's session. Not every one: curl
  // 7.88 (Debian 12) keeps no ticket from a resumed connection, so later ones alternate
  // between a full handshake and a resumed one.
  CHECK(stats["tls_resumed"] >= 1);
}

TEST_CASE("over HTTPS an untrusted certificate fails the job before anything is sent", "[e2e][tls]") {
  TlsFixture t;
  auto r = t.fx.script("secure.lua", kOneJob, {}, {{"CURL_CA_BUNDLE", std::nullopt}, {"SSL_CERT_FILE", std::nullopt}});
  INFO(r.describe());
  CHECK(r.exit_code == 3);
  CHECK(r.err.find("certificate") != std::string::npos);
  CHECK(r.err.find("CURL_CA_BUNDLE") != std::string::npos);  // and what to do about it
  json stats = t.fx.fake.stats();
  CHECK(stats["requests_total"] == 0);  // the TLS handshake failed: no request was ever read
  CHECK(stats["jobs_created"] == 0);
}

TEST_CASE("a CA bundle that cannot be read stops the run at the start, naming the file", "[e2e][tls]") {
  TlsFixture t;
  const std::string missing = (t.certs.path() / "nope.pem").string();
  auto r = t.fx.script("secure.lua", kOneJob, {}, {{"CURL_CA_BUNDLE", missing}});
  INFO(r.describe());
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(missing) != std::string::npos);
  CHECK(r.err.find("CURL_CA_BUNDLE") != std::string::npos);
  CHECK(t.fx.fake.stats()["requests_total"] == 0);
}

TEST_CASE("klingrun speaks HTTP/1.1 where the server offers HTTP/2", "[e2e][tls]") {
  // fal's hosts offer HTTP/2 in the TLS handshake, and curl takes it unless told otherwise.
  // klingrun stays on the HTTP/1.1 that every fault test here runs on (curl_loop.cpp says why).
  TlsFixture t({"--http2"});
  // The fake really offers it: libcurl's default over TLS (as in this probe) gets HTTP/2.
  auto probe = krt::http_call("GET", t.fx.fake.base() + "/queue/fal-ai/kling-video/requests/none/status",
                              "", {"Authorization: Key test:secret"}, 30, t.tls.cert);
  CHECK(probe.status == 404);
  CHECK(probe.json().contains("detail"));
  REQUIRE(t.fx.fake.stats()["http_versions"] == json{{"2.0", 1}});

  auto r = t.fx.script("secure.lua", kOneJob, {}, {{"CURL_CA_BUNDLE", t.tls.cert}});
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  json stats = t.fx.fake.stats();
  INFO("stats: " << stats.dump());
  CHECK(stats["http_versions"]["2.0"] == 1);  // the probe's, and no other
  CHECK(stats["http_versions"]["1.1"] == 4);  // submit, status stream, result, download
  CHECK(stats["downloads"] == 1);
}
