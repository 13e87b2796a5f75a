#include "net/file_sink.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "net/sha256.h"

namespace kr::net {

namespace {
// Chunks from curl (16 KiB) are gathered into pieces of this size before crossing threads.
constexpr std::size_t kPiece = 256 * 1024;
}  // namespace

struct FileSink::File {
  int fd = -1;
  std::string part;
  std::size_t worker = 0;
  std::string pending;              // the loop thread's: bytes not handed over yet
  Sha256 sha;                       // its worker's only
  std::string error;                // set by the worker before `failed`
  std::atomic<bool> failed{false};  // a write failed: the rest is skipped
  std::atomic<bool> dropped{false}; // discarded: the rest is skipped
};

FileSink::FileSink(Loop& loop, unsigned threads, std::size_t max_queued)
    : loop_(loop), max_queued_(max_queued) {
  for (unsigned i = 0; i < std::max(1u, threads); ++i) {
    Worker& w = workers_.emplace_back();
    w.thread = std::thread([this, &w] { run(w); });
  }
}

FileSink::~FileSink() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  for (auto& w : workers_) w.wake.notify_all();
  for (auto& w : workers_) w.thread.join();
}

FileSink::FileRef FileSink::open(int fd, std::string part) {
  auto f = std::make_shared<File>();
  f->fd = fd;
  f->part = std::move(part);
  f->worker = next_worker_++ % workers_.size();
  return f;
}

bool FileSink::write(const FileRef& f, std::string_view chunk) {
  if (f->failed.load(std::memory_order_acquire)) return false;
  if (f->pending.empty()) f->pending.reserve(kPiece + chunk.size());  // one allocation per piece
  f->pending.append(chunk);
  if (f->pending.size() >= kPiece) flush(f);
  return true;
}

void FileSink::flush(const FileRef& f) {
  if (f->pending.empty()) return;
  Task t{f, std::move(f->pending), {}, {}, false};
  f->pending.clear();
  std::unique_lock lk(mu_);
  // Back-pressure: the network outran the disk (or the hash); wait rather than buffer it all.
  drained_.wait(lk, [&] { return queued_bytes_ <= max_queued_; });
  queued_bytes_ += t.bytes.size();
  workers_[f->worker].tasks.push_back(std::move(t));
  lk.unlock();
  workers_[f->worker].wake.notify_one();
}

std::string FileSink::error(const FileRef& f) const {
  return f->failed.load(std::memory_order_acquire) ? f->error : std::string();
}

void FileSink::finish(const FileRef& f, std::string dest, std::function<void(const Outcome&)> done) {
  flush(f);
  loop_.expect_remote();
  push(f, Task{f, {}, std::move(dest), std::move(done), true});
}

void FileSink::discard(const FileRef& f) {
  f->pending.clear();
  f->dropped.store(true);
  ::unlink(f->part.c_str());  // now: the name may be reused by the next attempt at once
  push(f, Task{f, {}, {}, {}, false});  // closes the descriptor after its queued writes
}

void FileSink::push(const FileRef& f, Task t) {
  {
    std::lock_guard lk(mu_);
    workers_[f->worker].tasks.push_back(std::move(t));
  }
  workers_[f->worker].wake.notify_one();
}

void FileSink::run(Worker& w) {
  for (;;) {
    Task t;
    {
      std::unique_lock lk(mu_);
      w.wake.wait(lk, [&] { return stop_ || !w.tasks.empty(); });
      if (w.tasks.empty()) return;  // stopping, and nothing left to do
      t = std::move(w.tasks.front());
      w.tasks.pop_front();
    }
    File& f = *t.file;
    if (t.finish) {
      finish_file(t);
    } else if (!t.bytes.empty()) {
      if (!f.dropped && !f.failed) {
        const char* p = t.bytes.data();
        std::size_t n = t.bytes.size();
        while (n > 0) {
          ssize_t got = ::write(f.fd, p, n);
          if (got < 0 && errno == EINTR) continue;
          if (got < 0) {
            f.error = "cannot write " + f.part + ": " + std::strerror(errno);
            f.failed.store(true, std::memory_order_release);
            break;
          }
          p += got;
          n -= static_cast<std::size_t>(got);
        }
        if (!f.failed) f.sha.update(t.bytes.data(), t.bytes.size());
      }
      {
        std::lock_guard lk(mu_);
        queued_bytes_ -= t.bytes.size();
      }
      drained_.notify_all();
    } else if (f.fd >= 0) {  // discard
      ::close(f.fd);
      f.fd = -1;
    }
  }
}

// No fsync (see Downloader::on_done): the rename alone is atomic against a crash of the process.
void FileSink::finish_file(Task& t) {
  File& f = *t.file;
  Outcome o;
  if (f.failed) o.error = f.error;
  if (f.fd >= 0 && ::close(f.fd) != 0 && o.error.empty())
    o.error = "cannot write " + f.part + ": " + std::strerror(errno);
  f.fd = -1;
  if (f.dropped) {
    o.error = "discarded";  // discard() removed the .part already; its name may be reused
  } else {
    if (o.error.empty() && ::rename(f.part.c_str(), t.dest.c_str()) != 0)
      o.error = "cannot rename into " + t.dest + ": " + std::strerror(errno);
    if (o.error.empty()) o.sha256 = f.sha.hex();
    else ::unlink(f.part.c_str());
  }
  loop_.post_remote([done = std::move(t.done), o = std::move(o)] {
    if (done) done(o);
  });
}

}  // namespace kr::net
