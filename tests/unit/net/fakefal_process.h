#pragma once
// The net tests' view of the shared fake-fal launcher (tests/support/fakefal.h): the same
// process and control API, plus a FalConfig pointing at it and helpers that drive a Loop.

#include <chrono>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "fakefal.h"
#include "net/curl_loop.h"
#include "net/fal_config.h"

namespace kr::test {

class FakeFal : public krt::FakeFal {
 public:
  using krt::FakeFal::FakeFal;

  kr::net::FalConfig config(std::string key = "test:secret") const {
    kr::net::FalConfig c;
    c.queue_url = base() + "/queue";
    c.rest_url = base() + "/rest";
    c.key = std::move(key);
    return c;
  }

  // A blocking request to the fake for test set-up (never inside the Loop under test).
  nlohmann::json call(const std::string& method, const std::string& path, const std::string& body = "") const {
    return krt::http_call(method, base() + path, body).json();
  }
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
