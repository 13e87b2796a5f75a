#pragma once
// Test helper: tests/fakefal/fakefal.js on an ephemeral port for the life of the object, and its
// /_fake/ control API through blocking libcurl easy calls. Header-only; needs KR_FAKEFAL_JS,
// libcurl and nlohmann/json.
//
//   krt::FakeFal fake({"--queue-ms", "50", "--run-ms", "100", "--key", "test:secret"});
//   auto r = krt::run_process({.args = {...}, .env = fake.env(), .cwd = dir});
//   CHECK(fake.stats()["jobs_created"] == 1);

#include <curl/curl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "process.h"

namespace krt {

// One blocking HTTP call for test set-up and inspection (never for the code under test).
struct HttpReply {
  long status = 0;
  std::string body;
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

inline HttpReply http_call(const std::string& method, const std::string& url, const std::string& body = "",
                           std::vector<std::string> headers = {}, long timeout_s = 30,
                           const std::string& ca_file = "") {
  CURL* e = curl_easy_init();
  if (!e) throw std::runtime_error("curl_easy_init failed");
  HttpReply reply;
  curl_slist* hl = nullptr;
  if (!body.empty()) headers.push_back("Content-Type: application/json");
  for (auto& h : headers) hl = curl_slist_append(hl, h.c_str());
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(e, CURLOPT_TIMEOUT, timeout_s);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  if (!ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, ca_file.c_str());
  if (method == "POST") {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  } else if (method != "GET") {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method.c_str());
    if (!body.empty()) curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.c_str());
  }
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, +[](char* p, size_t s, size_t n, void* ud) {
    static_cast<std::string*>(ud)->append(p, s * n);
    return s * n;
  });
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &reply.body);
  CURLcode rc = curl_easy_perform(e);
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &reply.status);
  curl_slist_free_all(hl);
  curl_easy_cleanup(e);
  if (rc != CURLE_OK) throw std::runtime_error(method + " " + url + ": " + curl_easy_strerror(rc));
  return reply;
}

class FakeFal {
 public:
  // extra_args: e.g. {"--queue-ms", "50", "--run-ms", "100", "--key", "test:secret"}. With
  // "--tls-cert" it serves HTTPS, and its own control calls trust that certificate.
  explicit FakeFal(std::vector<std::string> extra_args = {}) {
    for (std::size_t i = 0; i + 1 < extra_args.size(); ++i)
      if (extra_args[i] == "--tls-cert") ca_ = extra_args[i + 1];
    char tmpl[] = "/tmp/krt_fakefal_XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    ProcOptions o;
    o.args = {"node", KR_FAKEFAL_JS, "--port", "0", "--exit-with-parent"};
    for (auto& a : extra_args) o.args.push_back(a);
    o.keep_stdin_open = true;  // --exit-with-parent: it goes when this pipe closes
    o.stderr_path = dir_ + "/stderr.txt";
    proc_ = std::make_unique<Process>(o);
    const std::string banner = "fakefal listening on ";
    proc_->wait_output("\n", 20);  // the ready line; nothing else ever comes on stdout
    const std::string& out = proc_->out();
    auto at = out.find(banner);
    auto nl = out.find('\n');
    if (at == std::string::npos || nl == std::string::npos)
      throw std::runtime_error("fakefal did not start: stdout=\"" + out + "\" stderr=" + stderr_text());
    base_ = out.substr(at + banner.size(), nl - at - banner.size());
    port_ = std::stoi(base_.substr(base_.rfind(':') + 1));
  }

  ~FakeFal() {
    if (proc_) {
      proc_->close_stdin();
      proc_->signal(SIGTERM);
      proc_->wait(5);
    }
    std::remove((dir_ + "/stderr.txt").c_str());
    rmdir(dir_.c_str());
  }
  FakeFal(const FakeFal&) = delete;
  FakeFal& operator=(const FakeFal&) = delete;

  const std::string& base() const { return base_; }  // "http://127.0.0.1:PORT" (https with --tls-cert)
  int port() const { return port_; }
  std::string stderr_text() const {
    std::ifstream f(dir_ + "/stderr.txt");
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }

  // What klingrun needs to talk to this fake (merge into ProcOptions::env).
  std::map<std::string, std::optional<std::string>> env(const std::string& key = "test:secret") const {
    return {{"FAL_KEY", key},
            {"FAL_KEY_ID", std::nullopt},
            {"FAL_KEY_SECRET", std::nullopt},
            {"FAL_QUEUE_URL", base_ + "/queue"},
            {"FAL_REST_URL", base_ + "/rest"},
            {"NO_COLOR", "1"}};
  }

  nlohmann::json stats() const { return get("/_fake/stats"); }
  nlohmann::json jobs() const { return get("/_fake/jobs"); }
  nlohmann::json uploads() const { return get("/_fake/uploads"); }
  nlohmann::json pending_faults() const { return get("/_fake/faults"); }
  // One fault object or an array of them; throws when the fake refuses it (a broken test).
  void fault(const nlohmann::json& f) const { post("/_fake/faults", f); }
  // Runtime knobs (queue_ms, run_ms, video_bytes, ...); returns the whole config.
  nlohmann::json config(const nlohmann::json& c) const { return post("/_fake/config", c); }
  void reset() const { post("/_fake/reset", nlohmann::json::object()); }

  nlohmann::json get(const std::string& path) const {
    HttpReply r = http_call("GET", base_ + path, "", {}, 30, ca_);
    if (r.status != 200) throw std::runtime_error("GET " + path + " -> " + std::to_string(r.status) + " " + r.body);
    return r.json();
  }
  nlohmann::json post(const std::string& path, const nlohmann::json& body) const {
    HttpReply r = http_call("POST", base_ + path, body.dump(), {}, 30, ca_);
    if (r.status != 200) throw std::runtime_error("POST " + path + " -> " + std::to_string(r.status) + " " + r.body);
    return r.json();
  }

 private:
  std::string dir_;
  std::unique_ptr<Process> proc_;
  std::string base_;
  std::string ca_;  // the certificate it serves HTTPS with, if any
  int port_ = 0;
};

}  // namespace krt
