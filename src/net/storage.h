#pragma once
// Uploads local files to fal storage (docs/fal-protocol.md#storage) and hands back their public URL.
// Bodies stream from disk; the same content is uploaded once per process.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "net/curl_loop.h"
#include "net/errors.h"
#include "net/fal_config.h"
#include "net/retry.h"

namespace kr::net {

class Storage {
 public:
  struct Options {
    RetryPolicy policy = RetryPolicy::storage();
    std::uint64_t multipart_threshold = 90ull * 1024 * 1024;  // above this: multipart (as the JS client)
    std::uint64_t part_size = 10ull * 1024 * 1024;
    int parallel_parts = 3;
    std::size_t hash_step = 8u * 1024 * 1024;  // bytes hashed per loop turn
    long api_timeout_ms = 120000;
    long connect_timeout_ms = 15000;
    long stall_seconds = 60;
  };
  using Callback = std::function<void(const Result<std::string>& file_url)>;

  Storage(Loop& loop, FalConfig config);
  Storage(Loop& loop, FalConfig config, Options options);
  ~Storage();  // drops uploads in flight without callbacks
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  // Uploads `path` and reports its file_url. Content already uploaded by this Storage (same
  // SHA-256 and content type) is not sent again; concurrent calls for the same content share
  // one upload. The callback runs from Loop::run_once().
  void upload_file(const std::string& path, const std::string& content_type, Callback cb);

  std::size_t cached() const { return cache_.size(); }
  std::size_t in_flight() const { return uploads_.size() + hashing_; }
  // The URL already known for this content (sha256 hex + content type), if any.
  std::string cached_url(const std::string& sha256_hex, const std::string& content_type) const;

  struct Upload;  // internal

 private:
  void hashed(std::string path, std::string content_type, std::string sha, std::uint64_t size, Callback cb);
  void initiate(const std::shared_ptr<Upload>& up);
  void put_single(const std::shared_ptr<Upload>& up);
  void pump_parts(const std::shared_ptr<Upload>& up);
  void complete_multipart(const std::shared_ptr<Upload>& up);
  void finish(const std::shared_ptr<Upload>& up, const Result<std::string>& r);
  HttpRequest request(std::string method, std::string url, std::string body, bool auth) const;

  Loop& loop_;
  FalConfig config_;
  Options opt_;
  std::map<std::string, std::string> cache_;                // key -> file_url
  std::map<std::string, std::shared_ptr<Upload>> uploads_;  // key -> upload in flight
  std::size_t hashing_ = 0;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace kr::net
