#pragma once
// One HTTP exchange as plain data: what to send, and what came back (or how it failed).

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kr::net {

// Lower-case header name -> value (the last one wins when a header repeats).
using Headers = std::map<std::string, std::string>;

struct HttpResponse;

// A byte range of a file sent as the request body, read as curl asks for it so that large
// uploads never sit in memory.
struct FileRange {
  std::string path;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

struct HttpRequest {
  std::string method = "GET";  // GET, POST, PUT
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // POST/PUT body, unless `file` is set
  std::optional<FileRange> file;     // stream the body from disk instead
  long connect_timeout_ms = 15000;
  long timeout_ms = 0;     // whole exchange; 0 = no limit (streams, downloads)
  long stall_seconds = 0;  // abort when nothing moves for this long; 0 = never
  bool follow_redirects = false;
  // curl's receive buffer (0: curl's 16 KiB). Bigger for bulk bodies: fewer reads and callbacks.
  long buffer_size = 0;
  // Use a new connection. For requests that must not be repeated: on a reused connection that
  // turns out dead, curl silently resends the request on a fresh one.
  bool fresh_connect = false;
  // When set, the body of a 2xx answer is handed here chunk by chunk instead of being kept in
  // HttpResponse::body (non-2xx bodies are still kept, for the error message). Return false to
  // abort the transfer; it then completes with curl_code CURLE_WRITE_ERROR and sink_aborted.
  std::function<bool(std::string_view chunk, const HttpResponse& head)> on_data;
};

struct HttpResponse {
  int status = 0;  // 0 when no answer arrived
  Headers headers;
  std::string body;
  int curl_code = 0;       // CURLcode; 0 = the exchange completed
  std::string error;       // curl's explanation when curl_code != 0
  bool request_sent = false;      // curl began sending the request (connection ready)
  bool request_complete = false;  // every byte of the request (headers and body) went out
  bool sink_aborted = false;  // on_data returned false
  std::int64_t content_length = -1;  // from the answer's headers, -1 when unknown
  std::uint64_t body_bytes = 0;      // body bytes received (whether kept or streamed)
  double total_seconds = 0;

  bool ok() const { return curl_code == 0 && status >= 200 && status < 300; }
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string{} : it->second;
  }
};

// Percent-encodes everything outside RFC 3986 unreserved characters.
std::string url_encode(std::string_view s);

// "https://h:1/a/b?x=1" -> {"https://h:1", "/a/b", "?x=1"}
struct UrlParts {
  std::string origin;
  std::string path;
  std::string query;  // including the leading '?', or empty
};
UrlParts split_url(std::string_view url);

}  // namespace kr::net
