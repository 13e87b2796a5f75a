#include "net/curl_loop.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <stdexcept>

namespace kr::net {

namespace {

// Bodies of error answers are kept for the message, not for their bulk.
constexpr std::size_t kMaxErrorBody = 64 * 1024;

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string trim(std::string_view s) {
  std::size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

}  // namespace

struct Loop::Transfer {
  TransferId id = 0;
  CURL* easy = nullptr;
  HttpRequest req;
  HttpResponse resp;
  DoneFn done;
  curl_slist* header_list = nullptr;
  FILE* file = nullptr;
  std::uint64_t file_left = 0;
  bool in_multi = false;
  bool cancelled = false;
  bool performed = false;  // has been through curl_multi_perform: may have sent bytes
  char errbuf[CURL_ERROR_SIZE] = {};

  ~Transfer() {
    if (easy) curl_easy_cleanup(easy);
    if (header_list) curl_slist_free_all(header_list);
    if (file) std::fclose(file);
  }

  static size_t on_header(char* p, size_t size, size_t n, void* ud) {
    auto* t = static_cast<Transfer*>(ud);
    std::string_view line(p, size * n);
    if (line.rfind("HTTP/", 0) == 0) {
      // A new status line: an interim 1xx or a redirect hop came before; start over.
      t->resp.headers.clear();
      t->resp.content_length = -1;
      auto sp = line.find(' ');
      t->resp.status = sp == std::string_view::npos ? 0 : std::atoi(std::string(line.substr(sp + 1, 3)).c_str());
      return size * n;
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return size * n;
    std::string name = trim(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string value = trim(line.substr(colon + 1));
    if (name == "content-length") t->resp.content_length = std::atoll(value.c_str());
    t->resp.headers[name] = std::move(value);
    return size * n;
  }

  static size_t on_write(char* p, size_t size, size_t n, void* ud) {
    auto* t = static_cast<Transfer*>(ud);
    const size_t len = size * n;
    if (t->cancelled) return 0;
    t->resp.body_bytes += len;
    const bool success = t->resp.status >= 200 && t->resp.status < 300;
    if (t->req.on_data && success) {
      if (!t->req.on_data(std::string_view(p, len), t->resp)) {
        t->resp.sink_aborted = true;
        return 0;
      }
      return len;
    }
    if (!t->req.on_data || t->resp.body.size() < kMaxErrorBody) t->resp.body.append(p, len);
    return len;
  }

  static size_t on_read(char* buf, size_t size, size_t n, void* ud) {
    auto* t = static_cast<Transfer*>(ud);
    if (!t->file) return CURL_READFUNC_ABORT;
    std::size_t want = std::min<std::uint64_t>(size * n, t->file_left);
    if (want == 0) return 0;
    std::size_t got = std::fread(buf, 1, want, t->file);
    if (got == 0) return CURL_READFUNC_ABORT;  // file shrank under us: fail, never send short
    t->file_left -= got;
    return got;
  }

  // curl rewinds the body when it must resend it (redirect, dead reused connection).
  static int on_seek(void* ud, curl_off_t offset, int origin) {
    auto* t = static_cast<Transfer*>(ud);
    if (origin != SEEK_SET || !t->file || !t->req.file) return CURL_SEEKFUNC_CANTSEEK;
    if (offset < 0 || static_cast<std::uint64_t>(offset) > t->req.file->length) return CURL_SEEKFUNC_FAIL;
    if (fseeko(t->file, static_cast<off_t>(t->req.file->offset + offset), SEEK_SET) != 0)
      return CURL_SEEKFUNC_FAIL;
    t->file_left = t->req.file->length - static_cast<std::uint64_t>(offset);
    return CURL_SEEKFUNC_OK;
  }

  // Fires once the connection is ready and the request is about to go out: from here on, the
  // server may have seen it.
  static int on_prereq(void* ud, char*, char*, int, int) {
    static_cast<Transfer*>(ud)->resp.request_sent = true;
    return CURL_PREREQFUNC_OK;
  }
};

Loop::Loop() {
  global_init();
  multi_ = curl_multi_init();
  if (!multi_) throw std::runtime_error("curl_multi_init failed");
  // A multi handle shares connections and DNS, but each easy handle keeps its own TLS session
  // cache, and every transfer here is a new easy handle: without this, each new connection
  // (every submit opens one, see HttpRequest::fresh_connect) is a full handshake with the
  // certificate chain checked. One thread uses the Loop, so the share needs no locks.
  share_ = curl_share_init();
  if (share_) curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  // Keep enough idle connections for many concurrent jobs to reuse them.
  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, 64L);
}

Loop::~Loop() {
  for (auto& [id, t] : transfers_) {
    if (t->in_multi) curl_multi_remove_handle(multi_, t->easy);
    t->in_multi = false;
  }
  transfers_.clear();
  curl_multi_cleanup(multi_);
  if (share_) curl_share_cleanup(share_);  // after every easy handle that used it
}

Loop::TransferId Loop::start(HttpRequest req, DoneFn done) {
  auto t = std::make_unique<Transfer>();
  t->id = next_transfer_++;
  t->req = std::move(req);
  t->done = std::move(done);
  CURL* e = t->easy = curl_easy_init();
  if (!e) throw std::runtime_error("curl_easy_init failed");
  const HttpRequest& r = t->req;

  curl_easy_setopt(e, CURLOPT_URL, r.url.c_str());
  curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  // HTTP/1.1 even where the server offers HTTP/2 (fal's hosts do; curl would take it): the
  // protocol fal's official JS client speaks (Node's fetch), and the one every fault test runs
  // on (dropped connections, stalls, truncated bodies, the ambiguous submit). HTTP/2 would
  // multiplex SSE streams onto one connection, where one dead connection is many failures at
  // once; with two jobs in flight by default, the connections it saves do not pay for that.
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  if (share_) curl_easy_setopt(e, CURLOPT_SHARE, share_);
  if (!ca_bundle_.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, ca_bundle_.c_str());
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, r.connect_timeout_ms);
  if (r.timeout_ms > 0) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r.timeout_ms);
  if (r.stall_seconds > 0) {
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, r.stall_seconds);
  }
  if (r.follow_redirects) {
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
  }
  if (r.fresh_connect) curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
  if (r.buffer_size > 0) curl_easy_setopt(e, CURLOPT_BUFFERSIZE, r.buffer_size);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Transfer::on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Transfer::on_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
  curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, &Transfer::on_prereq);
  curl_easy_setopt(e, CURLOPT_PREREQDATA, t.get());

  for (const auto& h : r.headers) t->header_list = curl_slist_append(t->header_list, h.c_str());
  // Never wait a second for "100 Continue" before sending a body.
  t->header_list = curl_slist_append(t->header_list, "Expect:");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->header_list);

  if (r.file) {
    t->file = std::fopen(r.file->path.c_str(), "rb");
    if (t->file && fseeko(t->file, static_cast<off_t>(r.file->offset), SEEK_SET) != 0) {
      std::fclose(t->file);
      t->file = nullptr;
    }
    t->file_left = r.file->length;
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    if (r.method != "PUT") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r.method.c_str());
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(r.file->length));
    curl_easy_setopt(e, CURLOPT_READFUNCTION, &Transfer::on_read);
    curl_easy_setopt(e, CURLOPT_READDATA, t.get());
    curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, &Transfer::on_seek);
    curl_easy_setopt(e, CURLOPT_SEEKDATA, t.get());
  } else if (r.method == "GET") {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r.body.c_str());
    if (r.method != "POST") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r.method.c_str());
  }

  const TransferId id = t->id;
  Transfer* raw = t.get();
  transfers_.emplace(id, std::move(t));
  if (raw->req.file && !raw->file) {
    // Report a missing file like any other failure: through `done`, from run_once.
    raw->resp.curl_code = CURLE_READ_ERROR;
    raw->resp.error = "cannot open " + raw->req.file->path;
    finished_.push_back(id);
  } else if (in_perform_) {
    pending_add_.push_back(id);  // curl forbids adding handles from inside its callbacks
  } else {
    add_to_multi(raw);
  }
  return id;
}

void Loop::add_to_multi(Transfer* t) {
  if (curl_multi_add_handle(multi_, t->easy) == CURLM_OK) {
    t->in_multi = true;
  } else {
    t->resp.curl_code = CURLE_FAILED_INIT;
    t->resp.error = "curl_multi_add_handle failed";
    finished_.push_back(t->id);
  }
}

void Loop::remove_from_multi(Transfer* t) {
  if (t->in_multi) curl_multi_remove_handle(multi_, t->easy);
  t->in_multi = false;
}

bool Loop::cancel(TransferId id) {
  auto it = transfers_.find(id);
  if (it == transfers_.end() || it->second->cancelled) return false;
  if (in_perform_) {
    // Removing a handle inside a curl callback is forbidden: mark it; perform() sweeps it.
    it->second->cancelled = true;
    return true;
  }
  remove_from_multi(it->second.get());
  transfers_.erase(it);
  return true;
}

bool Loop::may_have_sent(TransferId id) const {
  auto it = transfers_.find(id);
  return it == transfers_.end() || it->second->performed;
}

Loop::TimerId Loop::after(double delay_ms, std::function<void()> fn) {
  const TimerId id = next_timer_++;
  auto due = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double, std::milli>(std::max(0.0, delay_ms)));
  timers_.emplace(id, Timer{due, std::move(fn)});
  timer_order_.emplace(due, id);
  return id;
}

bool Loop::cancel_timer(TimerId id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return false;
  timer_order_.erase({it->second.due, id});
  timers_.erase(it);
  return true;
}

void Loop::perform() {
  // Handles added since the last round are only queued in curl; this is where they start.
  if (before_io_) before_io_();
  for (auto& [id, t] : transfers_)
    if (t->in_multi) t->performed = true;
  int running = 0;
  in_perform_ = true;
  curl_multi_perform(multi_, &running);
  in_perform_ = false;

  for (auto it = transfers_.begin(); it != transfers_.end();) {
    if (it->second->cancelled) {
      remove_from_multi(it->second.get());
      it = transfers_.erase(it);
    } else {
      ++it;
    }
  }
  std::vector<TransferId> adds;
  adds.swap(pending_add_);
  for (TransferId id : adds)
    if (auto it = transfers_.find(id); it != transfers_.end()) add_to_multi(it->second.get());

  int left = 0;
  while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
    if (m->msg != CURLMSG_DONE) continue;
    Transfer* t = nullptr;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &t);
    if (!t) continue;
    t->resp.curl_code = m->data.result;
    finished_.push_back(t->id);
  }
}

int Loop::dispatch_done() {
  std::vector<TransferId> done;
  done.swap(finished_);
  int n = 0;
  for (TransferId id : done) {
    auto it = transfers_.find(id);
    if (it == transfers_.end()) continue;
    std::unique_ptr<Transfer> t = std::move(it->second);
    transfers_.erase(it);
    remove_from_multi(t.get());
    HttpResponse& r = t->resp;
    CURL* e = t->easy;
    long code = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    if (code) r.status = static_cast<int>(code);
    long req_size = 0, hdr_size = 0, connects = 0;
    curl_easy_getinfo(e, CURLINFO_REQUEST_SIZE, &req_size);
    curl_easy_getinfo(e, CURLINFO_HEADER_SIZE, &hdr_size);
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects);
    connections_opened_ += static_cast<std::uint64_t>(connects);
    if (req_size > 0 || hdr_size > 0) r.request_sent = true;
    curl_off_t uploaded = 0;
    curl_easy_getinfo(e, CURLINFO_SIZE_UPLOAD_T, &uploaded);
    const std::uint64_t body_len = t->req.file ? t->req.file->length
                                   : t->req.method == "GET" ? 0 : t->req.body.size();
    r.request_complete = req_size > 0 && static_cast<std::uint64_t>(uploaded) >= body_len;
    curl_easy_getinfo(e, CURLINFO_TOTAL_TIME, &r.total_seconds);
    if (r.curl_code != CURLE_OK && r.error.empty()) {
      r.error = t->errbuf[0] ? t->errbuf : curl_easy_strerror(static_cast<CURLcode>(r.curl_code));
    }
    ++n;
    if (t->done) t->done(r);
  }
  return n;
}

int Loop::fire_timers() {
  // Timers added while firing wait for the next round, so a callback that re-posts itself
  // cannot starve the transfers.
  const TimerId limit = next_timer_;
  const auto now = Clock::now();
  int n = 0;
  auto it = timer_order_.begin();
  while (it != timer_order_.end() && it->first <= now) {
    const TimerId id = it->second;
    if (id >= limit) {
      ++it;
      continue;
    }
    timer_order_.erase(it);
    auto node = timers_.extract(id);
    ++n;
    if (node) node.mapped().fn();
    it = timer_order_.begin();  // callbacks may have added or removed timers
  }
  return n;
}

void Loop::post_remote(std::function<void()> fn) {
  {
    std::lock_guard lk(remote_mu_);
    remote_.push_back(std::move(fn));
  }
  curl_multi_wakeup(multi_);  // thread-safe; a wake-up before the wait makes the wait return
}

int Loop::run_remote() {
  std::vector<std::function<void()>> fns;
  {
    std::lock_guard lk(remote_mu_);
    fns.swap(remote_);
  }
  for (auto& fn : fns) {
    --remote_expected_;
    fn();
  }
  return static_cast<int>(fns.size());
}

int Loop::run_once(int max_wait_ms) {
  if (!busy() && finished_.empty()) return 0;
  perform();
  int n = dispatch_done() + fire_timers() + run_remote();
  if (n > 0 || !busy()) return n;

  long wait = std::max(0, max_wait_ms);
  if (!timer_order_.empty()) {
    auto until = std::chrono::duration<double, std::milli>(timer_order_.begin()->first - Clock::now()).count();
    wait = std::clamp<long>(static_cast<long>(std::ceil(until)), 0, wait);
  }
  if (wait > 0) curl_multi_poll(multi_, nullptr, 0, static_cast<int>(wait), nullptr);
  perform();
  return dispatch_done() + fire_timers() + run_remote();
}

void Loop::run() {
  while (busy()) run_once(1000);
}

}  // namespace kr::net
