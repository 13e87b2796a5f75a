#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "net/errors.h"

using namespace kr::net;
using json = nlohmann::json;

TEST_CASE("errors: loc to path drops the leading body", "[net][errors]") {
  CHECK(loc_to_path(json::parse(R"(["body","multi_prompt",2,"prompt"])")) == "multi_prompt[2].prompt");
  CHECK(loc_to_path(json::parse(R"(["body","prompt"])")) == "prompt");
  CHECK(loc_to_path(json::parse(R"(["body"])")) == "");
  CHECK(loc_to_path(json::parse(R"(["query","x"])")) == "query.x");
  CHECK(loc_to_path(json::parse(R"(["body","elements",0,"reference_image_urls",1])")) ==
        "elements[0].reference_image_urls[1]");
  CHECK(loc_to_path(json::parse(R"([0,"a"])")) == "[0].a");
}

TEST_CASE("errors: 422 detail array becomes path lines", "[net][errors]") {
  std::string body = R"({"detail":[
    {"loc":["body","multi_prompt",2,"prompt"],"msg":"Prompt must not exceed 512 characters.","type":"value_error"},
    {"loc":["body"],"msg":"Either prompt or multi_prompt must be provided, but not both.","type":"value_error"}]})";
  FalError e = error_from_http(422, {{"x-fal-request-id", "rid-1"}}, body);
  CHECK(e.kind == FalError::Kind::rejected);
  CHECK(e.http_status == 422);
  CHECK(e.request_id == "rid-1");
  CHECK_FALSE(e.retryable);
  REQUIRE(e.details.size() == 2);
  CHECK(e.details[0].path == "multi_prompt[2].prompt");
  CHECK(e.details[0].type == "value_error");
  auto lines = e.lines();
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "multi_prompt[2].prompt: Prompt must not exceed 512 characters.");
  CHECK(lines[1] == "Either prompt or multi_prompt must be provided, but not both.");
}

TEST_CASE("errors: string detail is one entry with an empty path", "[net][errors]") {
  FalError e = error_from_http(401, {}, R"({"detail":"No user found for Key ID and Secret"})");
  CHECK(e.kind == FalError::Kind::auth);
  REQUIRE(e.details.size() == 1);
  CHECK(e.details[0].path.empty());
  CHECK(e.message == "No user found for Key ID and Secret");
  CHECK(e.lines() == std::vector<std::string>{"No user found for Key ID and Secret"});
  CHECK(error_from_http(403, {}, "{}").kind == FalError::Kind::auth);
}

TEST_CASE("errors: kinds by status and error_type", "[net][errors]") {
  CHECK(error_from_http(429, {}, "{}").kind == FalError::Kind::rate_limited);
  CHECK(error_from_http(500, {}, "{}").kind == FalError::Kind::server);
  CHECK(error_from_http(400, {}, R"({"detail":"Bad request","error_type":"bad_request"})").kind ==
        FalError::Kind::rejected);
  FalError c = error_from_http(499, {}, R"({"detail":"Request cancelled by the client","error_type":"client_cancelled"})");
  CHECK(c.kind == FalError::Kind::cancelled);
  CHECK(c.error_type == "client_cancelled");

  FalError r = error_from_http(503, {{"x-fal-error-type", "runner_disconnected"}}, R"({"detail":"Runner disconnected"})");
  CHECK(r.kind == FalError::Kind::server);
  CHECK(r.error_type == "runner_disconnected");
  CHECK(r.message == "Runner disconnected");
  CHECK(r.retryable);

  FalError t = error_from_http(504, {{"x-fal-request-timeout-type", "user"}}, R"({"detail":"Request timed out"})");
  CHECK(t.kind == FalError::Kind::timeout);
  CHECK_FALSE(t.retryable);

  FalError html = error_from_http(502, {}, "<html>nginx</html>");
  CHECK(html.kind == FalError::Kind::server);
  CHECK(html.message.find("nginx") != std::string::npos);

  FalError flag = error_from_http(500, {{"x-fal-retryable", "false"}}, "{}");
  CHECK_FALSE(flag.retryable);
}

TEST_CASE("errors: COMPLETED status with an error is a failure", "[net][errors]") {
  auto st = json::parse(R"({"status":"COMPLETED","error":"Runner disconnected","error_type":"runner_disconnected"})");
  FalError e = error_from_completed_status(st, "r1");
  CHECK(e.kind == FalError::Kind::server);
  CHECK(e.message == "Runner disconnected");
  CHECK(e.request_id == "r1");
  auto cancelled = json::parse(R"({"status":"COMPLETED","error":"x","error_type":"client_cancelled"})");
  CHECK(error_from_completed_status(cancelled, "").kind == FalError::Kind::cancelled);
  auto timeout = json::parse(R"({"status":"COMPLETED","error":"x","error_type":"request_timeout"})");
  CHECK(error_from_completed_status(timeout, "").kind == FalError::Kind::timeout);
}

TEST_CASE("errors: describe carries kind, status, type and request id", "[net][errors]") {
  FalError e = error_from_http(503, {{"x-fal-request-id", "abc"}}, R"({"detail":"down","error_type":"runner_disconnected"})");
  CHECK(e.describe() == "server (503, runner_disconnected): down [request abc]");
}
