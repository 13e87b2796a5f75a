#include "net/fal_config.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#ifndef KLINGRUN_VERSION
#define KLINGRUN_VERSION "dev"
#endif

namespace kr::net {

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string{};
}

}  // namespace

std::string default_user_agent() { return "klingrun/" KLINGRUN_VERSION; }

FalConfig FalConfig::from_env() {
  FalConfig c;
  if (auto k = env("FAL_KEY"); !k.empty()) {
    c.key = k;
  } else if (auto id = env("FAL_KEY_ID"), secret = env("FAL_KEY_SECRET"); !id.empty() && !secret.empty()) {
    c.key = id + ":" + secret;
  }
  if (auto q = env("FAL_QUEUE_URL"); !q.empty()) c.queue_url = q;
  if (auto r = env("FAL_REST_URL"); !r.empty()) c.rest_url = r;
  if (auto ca = env("CURL_CA_BUNDLE"); !ca.empty()) c.ca_bundle = ca;
  else if (auto file = env("SSL_CERT_FILE"); !file.empty()) c.ca_bundle = file;
  if (auto s = env("KLINGRUN_FOLLOW_OUTAGE"); !s.empty()) {
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (end != s.c_str() && *end == '\0' && v >= 0 && v < 1e7) c.follow_outage_s = v;
    else c.follow_outage_text = s;
  }
  return c;
}

std::string FalConfig::problem() const {
  if (!follow_outage_text.empty())
    return "KLINGRUN_FOLLOW_OUTAGE: \"" + follow_outage_text + "\" is not a number of seconds (0 or more)";
  if (ca_bundle.empty() || ::access(ca_bundle.c_str(), R_OK) == 0) return {};
  return "the CA bundle \"" + ca_bundle + "\" (CURL_CA_BUNDLE or SSL_CERT_FILE) cannot be read: " + std::strerror(errno);
}

}  // namespace kr::net
