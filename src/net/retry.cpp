#include "net/retry.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <random>
#include <string>

#include "net/http.h"

namespace kr::net {

Outcome Outcome::from(const HttpResponse& r) {
  Outcome o;
  o.curl_code = r.curl_code;
  o.http_status = r.status;
  o.request_sent = r.request_sent;
  o.request_complete = r.request_complete;
  o.user_timeout = r.status == 504 && r.header("x-fal-request-timeout-type") == "user";
  if (auto ra = r.header("retry-after"); !ra.empty()) o.retry_after_ms = parse_retry_after(ra);
  return o;
}

bool is_transient_network_error(int code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_QUIC_CONNECT_ERROR:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_AGAIN:
      return true;
    default:
      return false;
  }
}

double RetryPolicy::backoff_ms(int attempt, double rnd) const {
  double d = std::min(base_ms * std::pow(2.0, std::max(0, attempt)), cap_ms);
  d *= 1.0 + jitter * (2.0 * rnd - 1.0);
  return std::max(0.0, d);
}

Decision RetryPolicy::decide(int attempt, const Outcome& o, double rnd) const {
  if (attempt >= max_retries) return {};
  bool retryable = false;
  if (o.http_status > 0 && (o.curl_code == 0 || o.http_status >= 400)) {
    retryable = codes.count(o.http_status) && !o.user_timeout;
  } else {
    retryable = o.curl_code != 0 && is_transient_network_error(o.curl_code);
  }
  if (!retryable) return {};
  return {true, delay_ms(attempt, o, rnd)};
}

namespace {
double uniform01() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}
}  // namespace

double RetryPolicy::delay_ms(int attempt, const Outcome& o, double rnd) const {
  double delay = backoff_ms(attempt, rnd);
  if (o.retry_after_ms) delay = std::max(delay, std::min(*o.retry_after_ms, retry_after_cap_ms));
  return delay;
}

double RetryPolicy::delay_ms(int attempt, const Outcome& o) const { return delay_ms(attempt, o, uniform01()); }

Decision RetryPolicy::decide(int attempt, const Outcome& o) const { return decide(attempt, o, uniform01()); }

RetryPolicy RetryPolicy::status() { return {5, 1000, 30000, 0.25, {429, 500, 502, 503, 504}}; }
RetryPolicy RetryPolicy::submit() { return {3, 1000, 60000, 0.25, {429, 502, 503, 504}}; }
RetryPolicy RetryPolicy::result() { return {3, 1000, 60000, 0.25, {429, 500, 502, 503, 504}}; }
RetryPolicy RetryPolicy::cancel() { return {3, 1000, 30000, 0.25, {429, 500, 502, 503, 504}}; }
RetryPolicy RetryPolicy::storage() { return {3, 1000, 30000, 0.25, {429, 500, 502, 503, 504}}; }
RetryPolicy RetryPolicy::download() { return {4, 1000, 30000, 0.25, {429, 500, 502, 503, 504}}; }

namespace {

int month_index(std::string_view m) {
  static const char* names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                "jul", "aug", "sep", "oct", "nov", "dec"};
  std::string low(m);
  for (auto& c : low) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (int i = 0; i < 12; ++i)
    if (low == names[i]) return i;
  return -1;
}

}  // namespace

std::optional<double> parse_retry_after(std::string_view v, std::chrono::system_clock::time_point now) {
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.front()))) v.remove_prefix(1);
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.remove_suffix(1);
  if (v.empty()) return std::nullopt;
  if (std::all_of(v.begin(), v.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) || c == '.'; })) {
    try {
      return std::stod(std::string(v)) * 1000.0;
    } catch (...) {
      return std::nullopt;
    }
  }
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (the only date form servers should send).
  std::string s(v);
  char wd[8] = {}, mon[8] = {}, tz[8] = {};
  int day = 0, year = 0, hh = 0, mm = 0, ss = 0;
  if (std::sscanf(s.c_str(), "%3s, %d %3s %d %d:%d:%d %3s", wd, &day, mon, &year, &hh, &mm, &ss, tz) != 8)
    return std::nullopt;
  int mi = month_index(mon);
  if (mi < 0) return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mi;
  tm.tm_mday = day;
  tm.tm_hour = hh;
  tm.tm_min = mm;
  tm.tm_sec = ss;
  std::time_t t = timegm(&tm);
  if (t == static_cast<std::time_t>(-1)) return std::nullopt;
  auto when = std::chrono::system_clock::from_time_t(t);
  double ms = std::chrono::duration<double, std::milli>(when - now).count();
  return std::max(0.0, ms);
}

SubmitVerdict classify_submit(const Outcome& o) {
  if (o.http_status > 0) {
    const bool complete = o.curl_code == 0;
    if (o.http_status >= 200 && o.http_status < 300)
      return complete ? SubmitVerdict::accepted : SubmitVerdict::unknown;
    // fal documents these as "no job was queued": rate limit, gateway trouble before queueing.
    // A user start-timeout 504 means the job existed and expired: final.
    if ((o.http_status == 429 || o.http_status == 502 || o.http_status == 503 || o.http_status == 504) &&
        !o.user_timeout)
      return SubmitVerdict::retry_safe;
    if (o.http_status >= 300) return SubmitVerdict::failed;
    // 1xx with no final answer: the request was received, its fate is unknown.
    return SubmitVerdict::unknown;
  }
  switch (o.curl_code) {
    // Never connected: nothing could have reached fal.
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      return SubmitVerdict::retry_safe;
    // TLS handshake failed: no HTTP request can have been sent on that connection.
    case CURLE_SSL_CONNECT_ERROR:
      return SubmitVerdict::retry_safe;
    // Permanent local problems: nothing was sent, and trying again will not help.
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_FAILED_INIT:
    case CURLE_OUT_OF_MEMORY:
      return SubmitVerdict::failed;
    default:
      break;
  }
  // Nothing sent (connect or TLS phase failed or timed out), or the connection broke before
  // the whole request was out: a server cannot act on a request it has not fully received.
  if (!o.request_sent || !o.request_complete) return SubmitVerdict::retry_safe;
  // The whole request went out and no answer came back (reset, empty reply, timeout, cut-off
  // answer): fal may have queued it, and we would never learn its id.
  return SubmitVerdict::unknown;
}

const char* verdict_name(SubmitVerdict v) {
  switch (v) {
    case SubmitVerdict::accepted: return "accepted";
    case SubmitVerdict::retry_safe: return "retry_safe";
    case SubmitVerdict::failed: return "failed";
    case SubmitVerdict::unknown: return "unknown";
  }
  return "?";
}

}  // namespace kr::net
