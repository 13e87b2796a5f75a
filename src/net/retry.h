#pragma once
// When to try a request again, and how long to wait first. Pure functions of the outcome, so
// they are tested without a network.

#include <chrono>
#include <optional>
#include <set>
#include <string_view>

namespace kr::net {

struct HttpResponse;

// What one attempt produced, reduced to what the retry decision needs.
struct Outcome {
  int curl_code = 0;      // CURLcode; 0 = an HTTP answer arrived
  int http_status = 0;    // 0 = none
  bool user_timeout = false;  // 504 with x-fal-request-timeout-type: user (never retried)
  std::optional<double> retry_after_ms;  // from a Retry-After header
  bool request_sent = false;      // curl began sending (connection was ready)
  bool request_complete = false;  // the whole request went out

  static Outcome from(const HttpResponse& r);
};

struct Decision {
  bool retry = false;
  double delay_ms = 0;
};

struct RetryPolicy {
  int max_retries = 3;      // attempts = max_retries + 1
  double base_ms = 1000;    // delay before retry k (0-based) = min(base * 2^k, cap), then jitter
  double cap_ms = 30000;
  double jitter = 0.25;     // +-25 % uniform
  std::set<int> codes = {429, 500, 502, 503, 504};
  double retry_after_cap_ms = 60000;  // a server may ask for a pause, but not for an hour

  // attempt = index of the attempt that just failed (0 = the first). `rnd` in [0,1) picks the
  // jitter; pass 0.5 for none.
  Decision decide(int attempt, const Outcome& o, double rnd) const;
  Decision decide(int attempt, const Outcome& o) const;  // random jitter
  double backoff_ms(int attempt, double rnd) const;
  // Backoff, stretched to Retry-After (capped) when the server asked for more.
  double delay_ms(int attempt, const Outcome& o, double rnd) const;
  double delay_ms(int attempt, const Outcome& o) const;

  // Presets (mirroring the official JS client where it has one).
  static RetryPolicy status();    // 5 retries, 1 s .. 30 s, 429/500/502/503/504
  static RetryPolicy submit();    // 3 retries, 1 s .. 60 s, 429/502/503/504 (see classify_submit)
  static RetryPolicy result();    // 3 retries, 1 s .. 60 s, 429/500/502/503/504
  static RetryPolicy cancel();    // 3 retries, 1 s .. 30 s
  static RetryPolicy storage();   // 3 retries, 1 s .. 30 s
  static RetryPolicy download();  // 4 retries, 1 s .. 30 s
};

// Whether a curl error is about the network (worth retrying for idempotent requests), as
// opposed to a local or permanent problem (bad URL, TLS certificate rejected, ...).
bool is_transient_network_error(int curl_code);

// Parses Retry-After: delay-seconds or an HTTP date. Returns milliseconds from `now`.
std::optional<double> parse_retry_after(std::string_view value,
                                        std::chrono::system_clock::time_point now =
                                            std::chrono::system_clock::now());

// What a submit attempt means for the job on fal's side.
enum class SubmitVerdict {
  accepted,     // 2xx with a body: the job exists
  retry_safe,   // fal surely created nothing (request not sent in full, or 429/502/503/504)
  failed,       // fal answered with a final error (401, 422, user-timeout 504, ...)
  unknown,      // sent, then no answer: a job may exist; never resubmit
};
SubmitVerdict classify_submit(const Outcome& o);

const char* verdict_name(SubmitVerdict v);

}  // namespace kr::net
