#pragma once
// Typed transport errors: what went wrong between us and fal, in a shape the runner can act
// on (retry? show field errors? keep the request id for support?).

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "net/http.h"

namespace kr::net {

struct FieldError {
  std::string path;     // "multi_prompt[2].prompt"; empty when the error is about the whole input
  std::string message;  // fal's `msg`, for humans
  std::string type;     // fal's machine `type`, e.g. "value_error.missing" (may be empty)
};

struct FalError {
  enum class Kind {
    auth,            // 401/403
    rejected,        // 422 and other 4xx: fal refused the input
    rate_limited,    // 429 still there after retries
    server,          // 5xx, or a job that completed with an error
    network,         // no usable answer (DNS, refused, reset, stalled)
    timeout,         // client deadline passed, or fal's start timeout (504 user)
    cancelled,       // 499 / client_cancelled, or cancel() on our side
    unknown_submit,  // submit may or may not have created a job; never resubmit blindly
    download,        // size mismatch, truncated body, disk trouble
  };

  Kind kind = Kind::network;
  int http_status = 0;
  std::string request_id;
  std::string message;
  std::vector<FieldError> details;
  std::string error_type;  // fal's error_type / X-Fal-Error-Type, e.g. "runner_disconnected"
  bool retryable = false;  // whether the same request could succeed later
  // fal finished the job and this is its verdict (COMPLETED with an error, or the model's own
  // 4xx from the result call) — as opposed to trouble reaching fal, after which the job may
  // still be running or done on fal, and paid for.
  bool job_failed = false;

  // One "path: message" line per field error (just "message" without a path); the summary
  // message when there are none.
  std::vector<std::string> lines() const;
  // One line for logs: "server (503, runner_disconnected): message [request abc]".
  std::string describe() const;
};

const char* kind_name(FalError::Kind k);

// Builds "a.b[2].c" from a pydantic-style `loc`, dropping the leading "body" that fal puts on
// every input location.
std::string loc_to_path(const nlohmann::json& loc);

// fal's `detail`: an array of {loc,msg,type} or a plain string.
std::vector<FieldError> parse_detail(const nlohmann::json& detail);

// Maps an HTTP error answer (status >= 400) to a FalError.
FalError error_from_http(int status, const Headers& headers, std::string_view body,
                         std::string request_id = {});

// A COMPLETED status that carries `error`/`error_type` (the queue has no FAILED state).
FalError error_from_completed_status(const nlohmann::json& status, std::string request_id);

// Either a value or a FalError; what every asynchronous operation hands its callback.
template <class T>
class Result {
 public:
  Result(T v) : v_(std::move(v)) {}
  Result(FalError e) : v_(std::move(e)) {}
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  const T& value() const { return std::get<0>(v_); }
  T& value() { return std::get<0>(v_); }
  const FalError& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, FalError> v_;
};

}  // namespace kr::net
