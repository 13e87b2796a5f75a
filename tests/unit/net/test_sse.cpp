#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "net/sse.h"

using namespace kr::net;

namespace {
struct Collect {
  std::vector<SseEvent> events;
  std::vector<std::string> comments;
  SseParser parser{[this](const SseEvent& e) { events.push_back(e); },
                   [this](std::string_view c) { comments.emplace_back(c); }};
};
}  // namespace

TEST_CASE("sse: data lines, blank-line dispatch, comments", "[net][sse]") {
  Collect c;
  c.parser.feed(": keep-alive\n\ndata: {\"status\":\"IN_QUEUE\"}\n\ndata: two\n\n");
  REQUIRE(c.events.size() == 2);
  CHECK(c.events[0].data == "{\"status\":\"IN_QUEUE\"}");
  CHECK(c.events[1].data == "two");
  REQUIRE(c.comments.size() == 1);
  CHECK(c.comments[0] == " keep-alive");
}

TEST_CASE("sse: multi-line data joins with newlines, event and id fields", "[net][sse]") {
  Collect c;
  c.parser.feed("event: status\nid: 7\ndata: a\ndata:b\ndata:  c\n\n");
  REQUIRE(c.events.size() == 1);
  CHECK(c.events[0].event == "status");
  CHECK(c.events[0].id == "7");
  CHECK(c.events[0].data == "a\nb\n c");  // only one leading space is stripped
}

TEST_CASE("sse: CRLF and lone CR line endings", "[net][sse]") {
  Collect c;
  c.parser.feed("data: x\r\n\r\ndata: y\r\rdata: z\n\n");
  REQUIRE(c.events.size() == 3);
  CHECK(c.events[0].data == "x");
  CHECK(c.events[1].data == "y");
  CHECK(c.events[2].data == "z");
}

TEST_CASE("sse: an event split at every possible byte gives the same result", "[net][sse]") {
  const std::string stream =
      "\xEF\xBB\xBF: hi\r\ndata: {\"status\":\"IN_PROGRESS\",\"logs\":[]}\r\n\r\ndata: second\r\ndata: line\n\n"
      "event: x\rdata: third\r\r";
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    for (std::size_t cut2 = cut; cut2 <= stream.size(); cut2 += 7) {
      Collect c;
      c.parser.feed(stream.substr(0, cut));
      c.parser.feed(stream.substr(cut, cut2 - cut));
      c.parser.feed(stream.substr(cut2));
      REQUIRE(c.events.size() == 3);
      CHECK(c.events[0].data == "{\"status\":\"IN_PROGRESS\",\"logs\":[]}");
      CHECK(c.events[1].data == "second\nline");
      CHECK(c.events[2].data == "third");
      CHECK(c.events[2].event == "x");
      CHECK(c.comments.size() == 1);
    }
  }
}

TEST_CASE("sse: byte-by-byte feeding", "[net][sse]") {
  Collect c;
  std::string s = "data: abc\r\n\r\n: c\n\ndata: d\n\n";
  for (char ch : s) c.parser.feed(std::string_view(&ch, 1));
  REQUIRE(c.events.size() == 2);
  CHECK(c.events[0].data == "abc");
  CHECK(c.events[1].data == "d");
}

TEST_CASE("sse: no event without data, unfinished event not dispatched", "[net][sse]") {
  Collect c;
  c.parser.feed("event: ping\n\nretry: 100\n\ndata: partial\n");
  CHECK(c.events.empty());
  c.parser.feed("\n");
  REQUIRE(c.events.size() == 1);
  CHECK(c.events[0].event.empty());  // the event name of a data-less event does not leak
  CHECK(c.events[0].data == "partial");
}

TEST_CASE("sse: field without colon and empty data", "[net][sse]") {
  Collect c;
  c.parser.feed("data\n\n");
  REQUIRE(c.events.size() == 1);
  CHECK(c.events[0].data.empty());
}
