#include <catch2/catch.hpp>

#include <cstdlib>

#include "net/fal_urls.h"

using namespace kr::net;

TEST_CASE("endpoint id splits into owner, alias and path, app id drops the path", "[net][urls]") {
  auto e = parse_endpoint_id("fal-ai/kling-video/v3/pro/text-to-video");
  CHECK(e.ns.empty());
  CHECK(e.owner == "fal-ai");
  CHECK(e.alias == "kling-video");
  CHECK(e.path == "v3/pro/text-to-video");
  CHECK(e.app_id() == "fal-ai/kling-video");
  CHECK(e.full() == "fal-ai/kling-video/v3/pro/text-to-video");

  auto plain = parse_endpoint_id("fal-ai/fast-sdxl");
  CHECK(plain.path.empty());
  CHECK(plain.app_id() == "fal-ai/fast-sdxl");
}

TEST_CASE("workflows and comfy namespaces take three segments for the app id", "[net][urls]") {
  auto w = parse_endpoint_id("workflows/acme/my-flow/run");
  CHECK(w.ns == "workflows");
  CHECK(w.owner == "acme");
  CHECK(w.alias == "my-flow");
  CHECK(w.path == "run");
  CHECK(w.app_id() == "workflows/acme/my-flow");

  auto c = parse_endpoint_id("comfy/acme/graph");
  CHECK(c.app_id() == "comfy/acme/graph");
  CHECK(c.path.empty());
  CHECK_THROWS_AS(parse_endpoint_id("workflows/acme"), std::invalid_argument);
}

TEST_CASE("legacy numeric ids and invalid ids", "[net][urls]") {
  auto l = parse_endpoint_id("12345-myapp");
  CHECK(l.owner == "12345");
  CHECK(l.alias == "myapp");
  CHECK(l.app_id() == "12345/myapp");
  CHECK_THROWS_AS(parse_endpoint_id("kling"), std::invalid_argument);
  CHECK_THROWS_AS(parse_endpoint_id("abc-def"), std::invalid_argument);
  CHECK_THROWS_AS(parse_endpoint_id(""), std::invalid_argument);
  CHECK_THROWS_AS(parse_endpoint_id("a//b"), std::invalid_argument);
}

TEST_CASE("queue URLs: submit keeps the path, the rest use the app id", "[net][urls]") {
  FalConfig c;
  auto e = parse_endpoint_id("fal-ai/kling-video/v3/pro/text-to-video");
  CHECK(fal_url::submit(c, e) == "https://queue.fal.run/fal-ai/kling-video/v3/pro/text-to-video");
  CHECK(fal_url::status(c, e, "abc", true) == "https://queue.fal.run/fal-ai/kling-video/requests/abc/status?logs=1");
  CHECK(fal_url::status(c, e, "abc", false) == "https://queue.fal.run/fal-ai/kling-video/requests/abc/status?logs=0");
  CHECK(fal_url::status_stream(c, e, "abc", true) ==
        "https://queue.fal.run/fal-ai/kling-video/requests/abc/status/stream?logs=1");
  CHECK(fal_url::result(c, e, "abc") == "https://queue.fal.run/fal-ai/kling-video/requests/abc");
  CHECK(fal_url::cancel(c, e, "abc") == "https://queue.fal.run/fal-ai/kling-video/requests/abc/cancel");
  CHECK(fal_url::upload_initiate(c, false) == "https://rest.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3");
  CHECK(fal_url::upload_initiate(c, true) ==
        "https://rest.fal.ai/storage/upload/initiate-multipart?storage_type=fal-cdn-v3");
}

TEST_CASE("base URLs may carry a path prefix and a trailing slash", "[net][urls]") {
  FalConfig c;
  c.queue_url = "http://127.0.0.1:5555/queue/";
  c.rest_url = "http://127.0.0.1:5555/rest";
  auto w = parse_endpoint_id("workflows/acme/my-flow/run");
  CHECK(fal_url::submit(c, w) == "http://127.0.0.1:5555/queue/workflows/acme/my-flow/run");
  CHECK(fal_url::status(c, w, "r1", true) == "http://127.0.0.1:5555/queue/workflows/acme/my-flow/requests/r1/status?logs=1");
  CHECK(fal_url::upload_initiate(c, false) ==
        "http://127.0.0.1:5555/rest/storage/upload/initiate?storage_type=fal-cdn-v3");
}

TEST_CASE("request ids are escaped inside the path", "[net][urls]") {
  FalConfig c;
  auto e = parse_endpoint_id("fal-ai/kling-video");
  CHECK(fal_url::result(c, e, "a/b?c") == "https://queue.fal.run/fal-ai/kling-video/requests/a%2Fb%3Fc");
}

TEST_CASE("multipart part and complete URLs keep the signed query at the end", "[net][urls]") {
  CHECK(fal_url::upload_part("http://h:1/upload/abc?token=xyz", 3) == "http://h:1/upload/abc/3?token=xyz");
  CHECK(fal_url::upload_complete("http://h:1/upload/abc?token=xyz") == "http://h:1/upload/abc/complete?token=xyz");
  CHECK(fal_url::upload_part("https://s.example/u/1", 1) == "https://s.example/u/1/1");
}

TEST_CASE("FalConfig::from_env: FAL_KEY wins, else id:secret, base URLs overridable", "[net][urls]") {
  unsetenv("FAL_KEY");
  setenv("FAL_KEY_ID", "id", 1);
  setenv("FAL_KEY_SECRET", "sec", 1);
  unsetenv("FAL_QUEUE_URL");
  unsetenv("FAL_REST_URL");
  auto c = FalConfig::from_env();
  CHECK(c.key == "id:sec");
  CHECK(c.queue_url == "https://queue.fal.run");
  CHECK(c.user_agent.rfind("klingrun/", 0) == 0);

  setenv("FAL_KEY", "k:s", 1);
  setenv("FAL_QUEUE_URL", "http://127.0.0.1:9/queue", 1);
  setenv("FAL_REST_URL", "http://127.0.0.1:9/rest", 1);
  c = FalConfig::from_env();
  CHECK(c.key == "k:s");
  CHECK(c.queue_url == "http://127.0.0.1:9/queue");
  CHECK(c.rest_url == "http://127.0.0.1:9/rest");
  for (auto v : {"FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET", "FAL_QUEUE_URL", "FAL_REST_URL"}) unsetenv(v);
  CHECK(FalConfig::from_env().key.empty());
}
