#include "net/sse.h"

namespace kr::net {

void SseParser::feed(std::string_view chunk) {
  if (chunk.empty()) return;  // must not forget a pending '\r'
  if (!bom_checked_) {
    // A UTF-8 BOM may only open the stream; it can arrive split, so look at the buffered start.
    buf_.append(chunk);
    if (buf_.size() < 3 && std::string_view("\xEF\xBB\xBF").substr(0, buf_.size()) == buf_) return;
    bom_checked_ = true;
    std::string start;
    start.swap(buf_);
    std::string_view s = start;
    if (s.substr(0, 3) == "\xEF\xBB\xBF") s.remove_prefix(3);
    feed(s);
    return;
  }
  std::size_t i = 0;
  if (after_cr_ && !chunk.empty() && chunk[0] == '\n') i = 1;
  after_cr_ = false;
  while (i < chunk.size()) {
    std::size_t end = chunk.find_first_of("\r\n", i);
    if (end == std::string_view::npos) {
      buf_.append(chunk.substr(i));
      return;
    }
    if (buf_.empty()) {
      line(chunk.substr(i, end - i));
    } else {
      buf_.append(chunk.substr(i, end - i));
      std::string l;
      l.swap(buf_);
      line(l);
    }
    if (chunk[end] == '\r') {
      if (end + 1 < chunk.size()) {
        i = end + (chunk[end + 1] == '\n' ? 2 : 1);
      } else {
        after_cr_ = true;
        i = end + 1;
      }
    } else {
      i = end + 1;
    }
  }
}

void SseParser::reset() {
  buf_.clear();
  after_cr_ = false;
  bom_checked_ = false;
  cur_ = {};
  has_data_ = false;
}

void SseParser::line(std::string_view l) {
  if (l.empty()) {
    if (has_data_) {
      if (!cur_.data.empty() && cur_.data.back() == '\n') cur_.data.pop_back();
      SseEvent ev = cur_;
      if (on_event_) on_event_(ev);
    }
    // `id` persists across events per the spec; everything else starts over.
    cur_.event.clear();
    cur_.data.clear();
    has_data_ = false;
    return;
  }
  if (l[0] == ':') {
    if (on_comment_) on_comment_(l.substr(1));
    return;
  }
  std::string_view field = l, value;
  if (auto colon = l.find(':'); colon != std::string_view::npos) {
    field = l.substr(0, colon);
    value = l.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    cur_.data.append(value);
    cur_.data.push_back('\n');
    has_data_ = true;
  } else if (field == "event") {
    cur_.event = std::string(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) cur_.id = std::string(value);
  }
  // "retry" and unknown fields are ignored: reconnection is the driver's business.
}

}  // namespace kr::net
