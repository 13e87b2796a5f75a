#include <catch2/catch.hpp>

#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "fakefal_process.h"
#include "net/curl_loop.h"

using namespace kr::net;
using Clock = std::chrono::steady_clock;

namespace {
int closed_port() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  close(s);
  return port;
}
}  // namespace

TEST_CASE("loop: timers fire in due order, cancelled ones never", "[net][loop]") {
  Loop loop;
  std::vector<int> fired;
  loop.after(30, [&] { fired.push_back(3); });
  loop.after(10, [&] { fired.push_back(1); });
  auto t = loop.after(20, [&] { fired.push_back(2); });
  CHECK(loop.busy());
  CHECK(loop.cancel_timer(t));
  CHECK_FALSE(loop.cancel_timer(t));
  kr::test::run_idle(loop, 5);
  CHECK(fired == std::vector<int>{1, 3});
  CHECK_FALSE(loop.busy());
}

TEST_CASE("loop: callbacks posted from a callback run on a later turn", "[net][loop]") {
  Loop loop;
  int depth = 0;
  std::function<void()> again = [&] {
    if (++depth < 5) loop.post(again);
  };
  loop.post(again);
  CHECK(depth == 0);  // nothing runs inside post()
  CHECK(loop.run_once(0) == 1);
  CHECK(depth == 1);  // the re-posted one waits for the next turn
  kr::test::run_idle(loop, 5);
  CHECK(depth == 5);
}

TEST_CASE("loop: run_once returns at once when idle and waits no longer than the next timer", "[net][loop]") {
  Loop loop;
  auto t0 = Clock::now();
  CHECK(loop.run_once(2000) == 0);
  CHECK(Clock::now() - t0 < std::chrono::milliseconds(100));

  bool fired = false;
  loop.after(80, [&] { fired = true; });
  t0 = Clock::now();
  while (!fired) loop.run_once(5000);
  auto took = Clock::now() - t0;
  CHECK(took >= std::chrono::milliseconds(75));
  CHECK(took < std::chrono::milliseconds(1000));
}

TEST_CASE("loop: connection refused is reported with nothing sent", "[net][loop]") {
  Loop loop;
  HttpRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(closed_port()) + "/x";
  std::optional<HttpResponse> got;
  loop.start(req, [&](HttpResponse& r) { got = r; });
  CHECK_FALSE(got);  // never inside start()
  kr::test::run_idle(loop, 10);
  REQUIRE(got);
  CHECK(got->curl_code == CURLE_COULDNT_CONNECT);
  CHECK(got->status == 0);
  CHECK_FALSE(got->request_sent);
  CHECK_FALSE(got->ok());
}

TEST_CASE("loop: a cancelled transfer never calls back, a missing upload file fails cleanly", "[net][loop]") {
  kr::test::FakeFal fake;
  Loop loop;
  HttpRequest req;
  req.url = fake.base() + "/_fake/stats";
  bool called = false;
  auto id = loop.start(req, [&](HttpResponse&) { called = true; });
  CHECK(loop.cancel(id));
  CHECK_FALSE(loop.cancel(id));
  kr::test::run_idle(loop, 5);
  CHECK_FALSE(called);

  HttpRequest put;
  put.method = "PUT";
  put.url = fake.base() + "/upload/x";
  put.file = FileRange{"/nonexistent/file", 0, 10};
  std::optional<HttpResponse> got;
  loop.start(put, [&](HttpResponse& r) { got = r; });
  kr::test::run_idle(loop, 5);
  REQUIRE(got);
  CHECK(got->curl_code == CURLE_READ_ERROR);
  CHECK_FALSE(got->request_sent);
}

TEST_CASE("loop: sequential requests reuse one keep-alive connection", "[net][loop]") {
  kr::test::FakeFal fake;
  Loop loop;
  int done = 0;
  std::function<void()> next = [&] {
    HttpRequest req;
    req.url = fake.base() + "/_fake/stats";
    loop.start(req, [&](HttpResponse& r) {
      CHECK(r.ok());
      CHECK(r.header("content-type") == "application/json");
      if (++done < 10) next();
    });
  };
  next();
  kr::test::run_idle(loop, 10);
  CHECK(done == 10);
  CHECK(loop.connections_opened() == 1);
}

TEST_CASE("loop: a data sink sees only 2xx bodies and can abort", "[net][loop]") {
  kr::test::FakeFal fake;
  Loop loop;
  std::string streamed;
  HttpRequest ok;
  ok.url = fake.base() + "/_fake/stats";
  ok.on_data = [&](std::string_view c, const HttpResponse& head) {
    CHECK(head.status == 200);
    streamed.append(c);
    return true;
  };
  std::optional<HttpResponse> a, b, c;
  loop.start(ok, [&](HttpResponse& r) { a = r; });
  HttpRequest missing = ok;
  missing.url = fake.base() + "/_fake/nope";
  loop.start(missing, [&](HttpResponse& r) { b = r; });
  HttpRequest abort = ok;
  abort.on_data = [](std::string_view, const HttpResponse&) { return false; };
  loop.start(abort, [&](HttpResponse& r) { c = r; });
  kr::test::run_idle(loop, 10);
  REQUIRE((a && b && c));
  CHECK(a->ok());
  CHECK(a->body.empty());
  CHECK(nlohmann::json::parse(streamed).contains("jobs_created"));
  CHECK(b->status == 404);
  CHECK(b->body.find("Unknown control call") != std::string::npos);  // error bodies are kept
  CHECK(c->sink_aborted);
  CHECK(c->curl_code == CURLE_WRITE_ERROR);
}

TEST_CASE("loop: before_io runs before a started request reaches the network", "[net][loop]") {
  // A listening socket that never accepts: a connection shows up as a readable listener.
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(listen(lfd, 4) == 0);
  socklen_t len = sizeof a;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
  auto connected = [&] {
    pollfd p{lfd, POLLIN, 0};
    return poll(&p, 1, 0) > 0;
  };

  Loop loop;
  int calls = 0;
  bool connected_at_first_call = true;
  bool unsent_at_first_call = false;
  Loop::TransferId id = 0;
  loop.set_before_io([&] {
    if (++calls == 1) {
      connected_at_first_call = connected();
      unsent_at_first_call = !loop.may_have_sent(id);
    }
  });
  HttpRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/x";
  id = loop.start(req, [](HttpResponse&) {});
  CHECK(calls == 0);  // never inside start()
  CHECK_FALSE(loop.may_have_sent(id));
  auto t0 = Clock::now();
  while (!connected() && Clock::now() - t0 < std::chrono::seconds(5)) loop.run_once(10);
  CHECK(calls >= 1);
  CHECK_FALSE(connected_at_first_call);  // the hook ran, then the connection was made
  CHECK(unsent_at_first_call);
  CHECK(connected());
  CHECK(loop.may_have_sent(id));
  loop.cancel(id);
  close(lfd);
}

TEST_CASE("loop: post_remote from another thread wakes a waiting loop and runs on its thread", "[net][loop]") {
  Loop loop;
  loop.expect_remote();
  CHECK(loop.busy());  // run() must not return while the other thread's answer is out
  std::thread::id ran_on;
  std::thread other([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    loop.post_remote([&] { ran_on = std::this_thread::get_id(); });
  });
  auto t0 = Clock::now();
  loop.run();  // waits up to 1 s per turn unless woken
  auto took = Clock::now() - t0;
  other.join();
  CHECK(ran_on == std::this_thread::get_id());
  CHECK(took < std::chrono::milliseconds(900));
  CHECK_FALSE(loop.busy());
}
