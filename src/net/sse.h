#pragma once
// Incremental text/event-stream parser (the subset of the WHATWG rules fal's status stream
// needs, done properly: any line ending, events split anywhere across chunks, comments).

#include <functional>
#include <string>
#include <string_view>

namespace kr::net {

struct SseEvent {
  std::string event;  // empty = "message"
  std::string data;   // data lines joined with '\n'
  std::string id;
};

class SseParser {
 public:
  using EventFn = std::function<void(const SseEvent&)>;
  using CommentFn = std::function<void(std::string_view)>;

  explicit SseParser(EventFn on_event, CommentFn on_comment = {})
      : on_event_(std::move(on_event)), on_comment_(std::move(on_comment)) {}

  // Feed any slice of the stream; complete events are dispatched before it returns.
  void feed(std::string_view chunk);
  // The stream ended: a final event without its blank line is dropped, as the spec says.
  void reset();

 private:
  void line(std::string_view l);

  EventFn on_event_;
  CommentFn on_comment_;
  std::string buf_;      // the current incomplete line
  bool after_cr_ = false;  // last chunk ended in '\r': a '\n' starting the next one is the same break
  bool bom_checked_ = false;
  SseEvent cur_;
  bool has_data_ = false;
};

}  // namespace kr::net
