#pragma once
// Test helper: runs tests/fakefal/fakefal.js on an ephemeral port for the life of the object,
// and talks to its /_fake/ control API with plain blocking curl calls (test code only).

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "net/curl_loop.h"
#include "net/fal_config.h"

extern char** environ;

namespace kr::test {

class FakeFal {
 public:
  explicit FakeFal(std::vector<std::string> extra_args = {}) {
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) throw std::runtime_error("pipe failed");
    std::vector<std::string> args = {"node", KR_FAKEFAL_JS, "--port", "0", "--exit-with-parent"};
    for (auto& a : extra_args) args.push_back(a);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    int rc = posix_spawnp(&pid_, "node", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
    fcntl(stdin_, F_SETFD, FD_CLOEXEC);
    fcntl(stdout_, F_SETFD, FD_CLOEXEC);
    if (rc != 0) throw std::runtime_error("cannot spawn node");

    std::string line;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (line.find('\n') == std::string::npos) {
      int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      deadline - std::chrono::steady_clock::now()).count());
      if (left <= 0) throw std::runtime_error("fakefal did not start");
      pollfd p{stdout_, POLLIN, 0};
      if (poll(&p, 1, left) <= 0) continue;
      char buf[256];
      ssize_t n = read(stdout_, buf, sizeof buf);
      if (n <= 0) throw std::runtime_error("fakefal exited before it was ready");
      line.append(buf, static_cast<std::size_t>(n));
    }
    auto at = line.find("http://");
    if (at == std::string::npos) throw std::runtime_error("unexpected fakefal banner: " + line);
    base_ = line.substr(at, line.find('\n', at) - at);
  }

  ~FakeFal() {
    if (stdin_ >= 0) close(stdin_);  // --exit-with-parent: EOF on stdin ends it
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int st = 0;
      waitpid(pid_, &st, 0);
    }
    if (stdout_ >= 0) close(stdout_);
  }
  FakeFal(const FakeFal&) = delete;
  FakeFal& operator=(const FakeFal&) = delete;

  const std::string& base() const { return base_; }

  kr::net::FalConfig config(std::string key = "test:secret") const {
    kr::net::FalConfig c;
    c.queue_url = base_ + "/queue";
    c.rest_url = base_ + "/rest";
    c.key = std::move(key);
    return c;
  }

  nlohmann::json stats() { return call("GET", "/_fake/stats"); }
  nlohmann::json jobs() { return call("GET", "/_fake/jobs"); }
  nlohmann::json uploads() { return call("GET", "/_fake/uploads"); }
  void fault(const nlohmann::json& f) { call("POST", "/_fake/faults", f.dump()); }
  void set_config(const nlohmann::json& c) { call("POST", "/_fake/config", c.dump()); }
  void reset() { call("POST", "/_fake/reset", "{}"); }

  // Blocking request, for test set-up only (never inside the Loop under test).
  nlohmann::json call(const std::string& method, const std::string& path, const std::string& body = "",
                      std::vector<std::string> headers = {}, long* status_out = nullptr) {
    CURL* e = curl_easy_init();
    std::string url = path.rfind("http", 0) == 0 ? path : base_ + path;
    std::string resp;
    curl_slist* hl = nullptr;
    headers.push_back("Content-Type: application/json");
    for (auto& h : headers) hl = curl_slist_append(hl, h.c_str());
    curl_easy_setopt(e, CURLOPT_URL, url.c_str());
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
    if (method == "POST") {
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.c_str());
    } else if (method != "GET") {
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method.c_str());
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.c_str());
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, +[](char* p, size_t s, size_t n, void* ud) {
      static_cast<std::string*>(ud)->append(p, s * n);
      return s * n;
    });
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &resp);
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status_out) *status_out = status;
    curl_slist_free_all(hl);
    curl_easy_cleanup(e);
    if (rc != CURLE_OK) throw std::runtime_error("control call failed: " + url);
    return nlohmann::json::parse(resp, nullptr, false);
  }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1, stdout_ = -1;
  std::string base_;
};

// Drives the loop until `done()` or the time limit; returns done().
inline bool run_until(kr::net::Loop& loop, const std::function<bool()>& done, double seconds = 20) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    if (!loop.busy()) break;
    loop.run_once(50);
  }
  return done();
}

// Drives the loop until nothing is pending (or the time limit).
inline bool run_idle(kr::net::Loop& loop, double seconds = 20) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (loop.busy() && std::chrono::steady_clock::now() < deadline) loop.run_once(50);
  return !loop.busy();
}

}  // namespace kr::test
