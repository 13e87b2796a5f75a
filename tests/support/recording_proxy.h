#pragma once
// Test helper: tests/support/recording_proxy.js in front of a FakeFal. Point klingrun at
// proxy.env() instead of fake.env(); every request it makes (API, uploads, CDN) then goes
// through the proxy, which records method, path, Authorization and User-Agent. Header-only.

#include <memory>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "fakefal.h"
#include "process.h"

namespace krt {

class RecordingProxy {
 public:
  explicit RecordingProxy(const FakeFal& fake) {
    ProcOptions o;
    o.args = {"node", std::string(KR_SOURCE_DIR) + "/tests/support/recording_proxy.js", "--target", fake.base(),
              "--exit-with-parent"};
    o.keep_stdin_open = true;
    o.stderr_path = "/dev/null";
    proc_ = std::make_unique<Process>(o);
    const std::string banner = "proxy listening on ";
    proc_->wait_output("\n", 20);
    auto at = proc_->out().find(banner);
    auto nl = proc_->out().find('\n');
    if (at == std::string::npos || nl == std::string::npos) throw std::runtime_error("recording proxy did not start");
    base_ = proc_->out().substr(at + banner.size(), nl - at - banner.size());
  }
  ~RecordingProxy() {
    proc_->close_stdin();
    proc_->signal(SIGTERM);
    proc_->wait(5);
  }
  RecordingProxy(const RecordingProxy&) = delete;
  RecordingProxy& operator=(const RecordingProxy&) = delete;

  const std::string& base() const { return base_; }
  std::map<std::string, std::optional<std::string>> env(const std::string& key = "test:secret") const {
    return {{"FAL_KEY", key},           {"FAL_KEY_ID", std::nullopt},       {"FAL_KEY_SECRET", std::nullopt},
            {"FAL_QUEUE_URL", base_ + "/queue"}, {"FAL_REST_URL", base_ + "/rest"}, {"NO_COLOR", "1"}};
  }
  // [{method, path, authorization (string or null), user_agent}], in arrival order.
  nlohmann::json requests() const {
    HttpReply r = http_call("GET", base_ + "/_proxy/requests");
    if (r.status != 200) throw std::runtime_error("proxy /_proxy/requests -> " + std::to_string(r.status));
    return r.json();
  }

 private:
  std::unique_ptr<Process> proc_;
  std::string base_;
};

}  // namespace krt
