#include "net/storage.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include <nlohmann/json.hpp>

#include "net/fal_urls.h"
#include "net/retrying_call.h"
#include "net/sha256.h"

namespace kr::net {

using json = nlohmann::json;

struct Storage::Upload {
  std::string key, path, content_type;
  std::uint64_t size = 0;
  bool multipart = false;
  std::string upload_url, file_url;
  std::vector<Callback> waiters;
  std::vector<std::shared_ptr<RetryingCall>> calls;
  // multipart
  int parts_total = 0;
  int next_part = 1;
  int parts_in_flight = 0;
  std::map<int, std::string> etags;
  bool done = false;
};

namespace {

std::string cache_key(const std::string& sha, const std::string& content_type) { return sha + "|" + content_type; }

std::string base_name(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

FalError storage_error(const HttpResponse& r, const std::string& what) {
  if (r.status >= 400) {
    FalError e = error_from_http(r.status, r.headers, r.body);
    e.message = what + ": " + e.message;
    return e;
  }
  FalError e;
  e.kind = FalError::Kind::network;
  e.http_status = r.status;
  e.message = what + ": " + (r.error.empty() ? "unexpected HTTP " + std::to_string(r.status) : r.error);
  e.retryable = true;
  return e;
}

// Hashes a file a slice per loop turn so a large upload does not stall the other transfers.
struct HashTask {
  FILE* f = nullptr;
  Sha256 sha;
  std::uint64_t size = 0;
  ~HashTask() {
    if (f) std::fclose(f);
  }
};

}  // namespace

Storage::Storage(Loop& loop, FalConfig config) : Storage(loop, std::move(config), Options{}) {}
Storage::Storage(Loop& loop, FalConfig config, Options options)
    : loop_(loop), config_(std::move(config)), opt_(std::move(options)) {}

Storage::~Storage() {
  alive_.reset();
  for (auto& [key, up] : uploads_)
    for (auto& c : up->calls)
      if (c) c->cancel();
}

std::string Storage::cached_url(const std::string& sha, const std::string& content_type) const {
  auto it = cache_.find(cache_key(sha, content_type));
  return it == cache_.end() ? std::string{} : it->second;
}

HttpRequest Storage::request(std::string method, std::string url, std::string body, bool auth) const {
  HttpRequest r;
  r.method = std::move(method);
  r.url = std::move(url);
  r.body = std::move(body);
  // The key goes to the configured REST host only; upload URLs come from an answer and are
  // pre-signed, so they never see it.
  if (auth && !config_.key.empty()) r.headers.push_back("Authorization: Key " + config_.key);
  r.headers.push_back("Accept: application/json");
  r.headers.push_back("User-Agent: " + config_.user_agent);
  r.connect_timeout_ms = opt_.connect_timeout_ms;
  r.timeout_ms = opt_.api_timeout_ms;
  r.stall_seconds = opt_.stall_seconds;
  return r;
}

void Storage::upload_file(const std::string& path, const std::string& content_type, Callback cb) {
  auto alive = std::weak_ptr<int>(alive_);
  auto task = std::make_shared<HashTask>();
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || !(task->f = std::fopen(path.c_str(), "rb"))) {
    FalError e{FalError::Kind::rejected, 0, "", "cannot read file to upload: " + path, {}, "", false};
    loop_.post([alive, cb = std::move(cb), e] {
      if (!alive.expired() && cb) cb(e);
    });
    return;
  }
  task->size = static_cast<std::uint64_t>(st.st_size);
  ++hashing_;
  auto step = std::make_shared<std::function<void()>>();
  *step = [this, alive, task, step, path, content_type, cb = std::move(cb)]() mutable {
    if (alive.expired()) {
      *step = nullptr;
      return;
    }
    std::vector<char> buf(std::min<std::size_t>(opt_.hash_step, 1 << 20));
    std::size_t budget = opt_.hash_step, n = 0;
    while (budget > 0 && (n = std::fread(buf.data(), 1, std::min(buf.size(), budget), task->f)) > 0) {
      task->sha.update(buf.data(), n);
      budget -= n;
    }
    if (budget == 0 && !std::feof(task->f)) {
      loop_.post(*step);
      return;
    }
    --hashing_;
    const bool bad = std::ferror(task->f);
    std::string sha = task->sha.hex();
    *step = nullptr;  // break the step -> step cycle (this call runs a posted copy)
    if (bad) {
      if (cb) cb(FalError{FalError::Kind::rejected, 0, "", "error reading file to upload: " + path, {}, "", false});
      return;
    }
    hashed(path, content_type, sha, task->size, std::move(cb));
  };
  loop_.post(*step);
}

void Storage::hashed(std::string path, std::string content_type, std::string sha, std::uint64_t size, Callback cb) {
  const std::string key = cache_key(sha, content_type);
  if (auto it = cache_.find(key); it != cache_.end()) {
    if (cb) cb(it->second);
    return;
  }
  if (auto it = uploads_.find(key); it != uploads_.end()) {
    it->second->waiters.push_back(std::move(cb));
    return;
  }
  auto up = std::make_shared<Upload>();
  up->key = key;
  up->path = std::move(path);
  up->content_type = content_type.empty() ? "application/octet-stream" : std::move(content_type);
  up->size = size;
  up->multipart = size > opt_.multipart_threshold;
  up->waiters.push_back(std::move(cb));
  uploads_.emplace(key, up);
  initiate(up);
}

void Storage::initiate(const std::shared_ptr<Upload>& up) {
  json body = {{"content_type", up->content_type}, {"file_name", base_name(up->path)}};
  HttpRequest req = request("POST", fal_url::upload_initiate(config_, up->multipart), body.dump(), true);
  req.headers.push_back("Content-Type: application/json");
  auto alive = std::weak_ptr<int>(alive_);
  up->calls.push_back(RetryingCall::start(loop_, std::move(req), opt_.policy, [this, alive, up](HttpResponse& r, int) {
    if (alive.expired() || up->done) return;
    if (!r.ok()) {
      finish(up, storage_error(r, "upload initiate"));
      return;
    }
    json j = json::parse(r.body, nullptr, false);
    if (!j.is_object() || !j.contains("upload_url") || !j.contains("file_url") || !j["upload_url"].is_string() ||
        !j["file_url"].is_string()) {
      finish(up, FalError{FalError::Kind::server, r.status, "", "upload initiate: answer lacks upload_url/file_url",
                          {}, "", true});
      return;
    }
    up->upload_url = j["upload_url"].get<std::string>();
    up->file_url = j["file_url"].get<std::string>();
    if (up->multipart) {
      up->parts_total = static_cast<int>((up->size + opt_.part_size - 1) / opt_.part_size);
      pump_parts(up);
    } else {
      put_single(up);
    }
  }));
}

void Storage::put_single(const std::shared_ptr<Upload>& up) {
  HttpRequest req = request("PUT", up->upload_url, {}, false);
  req.headers.push_back("Content-Type: " + up->content_type);
  req.file = FileRange{up->path, 0, up->size};
  req.timeout_ms = 0;  // big files on slow links: the stall limit guards instead
  auto alive = std::weak_ptr<int>(alive_);
  up->calls.push_back(RetryingCall::start(loop_, std::move(req), opt_.policy, [this, alive, up](HttpResponse& r, int) {
    if (alive.expired() || up->done) return;
    if (!r.ok()) finish(up, storage_error(r, "upload"));
    else finish(up, up->file_url);
  }));
}

void Storage::pump_parts(const std::shared_ptr<Upload>& up) {
  auto alive = std::weak_ptr<int>(alive_);
  while (!up->done && up->next_part <= up->parts_total && up->parts_in_flight < std::max(1, opt_.parallel_parts)) {
    const int n = up->next_part++;
    const std::uint64_t offset = static_cast<std::uint64_t>(n - 1) * opt_.part_size;
    const std::uint64_t len = std::min(opt_.part_size, up->size - offset);
    HttpRequest req = request("PUT", fal_url::upload_part(up->upload_url, n), {}, false);
    req.headers.push_back("Content-Type: application/octet-stream");
    req.file = FileRange{up->path, offset, len};
    req.timeout_ms = 0;
    ++up->parts_in_flight;
    up->calls.push_back(RetryingCall::start(loop_, std::move(req), opt_.policy, [this, alive, up, n](HttpResponse& r, int) {
      if (alive.expired() || up->done) return;
      --up->parts_in_flight;
      if (!r.ok()) {
        finish(up, storage_error(r, "upload part " + std::to_string(n)));
        return;
      }
      // The JS flow reads the etag from a JSON body; an S3-style ETag header also works.
      std::string etag;
      json j = json::parse(r.body, nullptr, false);
      if (j.is_object() && j.contains("etag") && j["etag"].is_string()) etag = j["etag"].get<std::string>();
      if (etag.empty()) etag = r.header("etag");
      if (etag.empty()) {
        finish(up, FalError{FalError::Kind::server, r.status, "", "upload part " + std::to_string(n) + ": no etag",
                            {}, "", true});
        return;
      }
      up->etags[n] = etag;
      if (static_cast<int>(up->etags.size()) == up->parts_total) complete_multipart(up);
      else pump_parts(up);
    }));
  }
}

void Storage::complete_multipart(const std::shared_ptr<Upload>& up) {
  json parts = json::array();
  for (const auto& [n, etag] : up->etags) parts.push_back({{"partNumber", n}, {"etag", etag}});
  HttpRequest req = request("POST", fal_url::upload_complete(up->upload_url), json{{"parts", parts}}.dump(), false);
  req.headers.push_back("Content-Type: application/json");
  auto alive = std::weak_ptr<int>(alive_);
  up->calls.push_back(RetryingCall::start(loop_, std::move(req), opt_.policy, [this, alive, up](HttpResponse& r, int) {
    if (alive.expired() || up->done) return;
    if (!r.ok()) finish(up, storage_error(r, "upload complete"));
    else finish(up, up->file_url);
  }));
}

void Storage::finish(const std::shared_ptr<Upload>& up, const Result<std::string>& r) {
  if (up->done) return;
  up->done = true;
  for (auto& c : up->calls)
    if (c) c->cancel();
  up->calls.clear();
  if (r.ok()) cache_[up->key] = r.value();
  uploads_.erase(up->key);
  auto waiters = std::move(up->waiters);
  for (auto& w : waiters)
    if (w) w(r);
}

}  // namespace kr::net
