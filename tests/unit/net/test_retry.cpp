#include <catch2/catch.hpp>

#include <curl/curl.h>

#include "net/http.h"
#include "net/retry.h"

using namespace kr::net;

namespace {
Outcome http(int status) {
  Outcome o;
  o.http_status = status;
  o.request_sent = o.request_complete = true;
  return o;
}
Outcome net(int code, bool sent, bool complete) {
  Outcome o;
  o.curl_code = code;
  o.request_sent = sent;
  o.request_complete = complete;
  return o;
}
}  // namespace

TEST_CASE("retry: which HTTP codes are retried", "[net][retry]") {
  RetryPolicy p = RetryPolicy::status();
  for (int c : {429, 500, 502, 503, 504}) CHECK(p.decide(0, http(c), 0.5).retry);
  for (int c : {200, 202, 400, 401, 403, 404, 408, 409, 422, 499, 501}) CHECK_FALSE(p.decide(0, http(c), 0.5).retry);
  // Submit and result do not retry a plain 500 the way status does.
  CHECK_FALSE(RetryPolicy::submit().decide(0, http(500), 0.5).retry);
  CHECK(RetryPolicy::submit().decide(0, http(503), 0.5).retry);
}

TEST_CASE("retry: a 504 with x-fal-request-timeout-type user is never retried", "[net][retry]") {
  Outcome o = http(504);
  o.user_timeout = true;
  for (auto p : {RetryPolicy::status(), RetryPolicy::submit(), RetryPolicy::result(), RetryPolicy::cancel()})
    CHECK_FALSE(p.decide(0, o, 0.5).retry);

  HttpResponse r;
  r.status = 504;
  r.headers["x-fal-request-timeout-type"] = "user";
  CHECK(Outcome::from(r).user_timeout);
  r.headers["x-fal-request-timeout-type"] = "infra";
  CHECK_FALSE(Outcome::from(r).user_timeout);
}

TEST_CASE("retry: network errors retried, permanent local errors not", "[net][retry]") {
  RetryPolicy p = RetryPolicy::status();
  for (int c : {CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_OPERATION_TIMEDOUT, CURLE_RECV_ERROR,
                CURLE_SEND_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE})
    CHECK(p.decide(0, net(c, true, true), 0.5).retry);
  for (int c : {CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL, CURLE_PEER_FAILED_VERIFICATION, CURLE_WRITE_ERROR})
    CHECK_FALSE(p.decide(0, net(c, true, true), 0.5).retry);
}

TEST_CASE("retry: exponential backoff, capped, with bounded jitter", "[net][retry]") {
  RetryPolicy p{10, 1000, 8000, 0.25, {503}};
  CHECK(p.backoff_ms(0, 0.5) == Approx(1000));
  CHECK(p.backoff_ms(1, 0.5) == Approx(2000));
  CHECK(p.backoff_ms(2, 0.5) == Approx(4000));
  CHECK(p.backoff_ms(3, 0.5) == Approx(8000));
  CHECK(p.backoff_ms(7, 0.5) == Approx(8000));  // cap
  CHECK(p.backoff_ms(0, 0.0) == Approx(750));   // -25 %
  CHECK(p.backoff_ms(0, 1.0) == Approx(1250));  // +25 %
  for (int i = 0; i < 200; ++i) {
    double d = p.decide(1, http(503)).delay_ms;
    CHECK(d >= 1500);
    CHECK(d <= 2500);
  }
}

TEST_CASE("retry: gives up after max_retries", "[net][retry]") {
  RetryPolicy p{3, 10, 100, 0, {503}};
  CHECK(p.decide(0, http(503), 0.5).retry);
  CHECK(p.decide(2, http(503), 0.5).retry);
  CHECK_FALSE(p.decide(3, http(503), 0.5).retry);
}

TEST_CASE("retry: Retry-After in seconds or as an HTTP date stretches the wait, capped", "[net][retry]") {
  CHECK(*parse_retry_after("3") == Approx(3000));
  CHECK(*parse_retry_after(" 0 ") == Approx(0));
  CHECK(*parse_retry_after("1.5") == Approx(1500));
  CHECK_FALSE(parse_retry_after("soon").has_value());
  CHECK_FALSE(parse_retry_after("").has_value());

  auto now = std::chrono::system_clock::from_time_t(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT
  CHECK(*parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now) == Approx(30000));
  CHECK(*parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now) == Approx(0));  // in the past

  RetryPolicy p{3, 100, 1000, 0, {429}};
  p.retry_after_cap_ms = 20000;
  Outcome o = http(429);
  o.retry_after_ms = 5000;
  CHECK(p.decide(0, o, 0.5).delay_ms == Approx(5000));  // longer than the backoff: honoured
  o.retry_after_ms = 10;
  CHECK(p.decide(0, o, 0.5).delay_ms == Approx(100));  // shorter: the backoff still applies
  o.retry_after_ms = 3600000;
  CHECK(p.decide(0, o, 0.5).delay_ms == Approx(20000));  // an hour: capped

  HttpResponse r;
  r.status = 429;
  r.headers["retry-after"] = "2";
  CHECK(*Outcome::from(r).retry_after_ms == Approx(2000));
}

TEST_CASE("submit safety: answered codes", "[net][retry][submit]") {
  CHECK(classify_submit(http(200)) == SubmitVerdict::accepted);
  for (int c : {429, 502, 503, 504}) CHECK(classify_submit(http(c)) == SubmitVerdict::retry_safe);
  for (int c : {400, 401, 403, 404, 422, 500})
    CHECK(classify_submit(http(c)) == SubmitVerdict::failed);
  Outcome user = http(504);
  user.user_timeout = true;
  CHECK(classify_submit(user) == SubmitVerdict::failed);
}

TEST_CASE("submit safety: nothing sent means safe to resend", "[net][retry][submit]") {
  CHECK(classify_submit(net(CURLE_COULDNT_CONNECT, false, false)) == SubmitVerdict::retry_safe);
  CHECK(classify_submit(net(CURLE_COULDNT_RESOLVE_HOST, false, false)) == SubmitVerdict::retry_safe);
  CHECK(classify_submit(net(CURLE_SSL_CONNECT_ERROR, false, false)) == SubmitVerdict::retry_safe);
  // Connect timeout: the request never left.
  CHECK(classify_submit(net(CURLE_OPERATION_TIMEDOUT, false, false)) == SubmitVerdict::retry_safe);
  // The connection broke while the body was still going out: fal cannot act on half a request.
  CHECK(classify_submit(net(CURLE_SEND_ERROR, true, false)) == SubmitVerdict::retry_safe);
  CHECK(classify_submit(net(CURLE_RECV_ERROR, true, false)) == SubmitVerdict::retry_safe);
}

TEST_CASE("submit safety: sent without an answer is unknown, never resent", "[net][retry][submit]") {
  for (int c : {CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_OPERATION_TIMEDOUT, CURLE_PARTIAL_FILE, CURLE_SEND_ERROR,
                CURLE_HTTP2_STREAM})
    CHECK(classify_submit(net(c, true, true)) == SubmitVerdict::unknown);
  // A 2xx whose body was cut off: the job exists but its id may be lost.
  Outcome cut = http(200);
  cut.curl_code = CURLE_PARTIAL_FILE;
  CHECK(classify_submit(cut) == SubmitVerdict::unknown);
  // Permanent local trouble before sending: a final failure, not a retry.
  CHECK(classify_submit(net(CURLE_URL_MALFORMAT, false, false)) == SubmitVerdict::failed);
  CHECK(classify_submit(net(CURLE_PEER_FAILED_VERIFICATION, false, false)) == SubmitVerdict::failed);
}
