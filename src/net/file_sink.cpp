#include "net/file_sink.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "net/sha256_lanes.h"

namespace kr::net {

namespace {
// Chunks from curl (16 KiB) are gathered into pieces of this size before crossing threads.
constexpr std::size_t kPiece = 256 * 1024;
// A batch is hashed, and its memory released, at the latest once this much is waiting: room
// for 16 videos of 1 MiB, one per lane.
constexpr std::size_t kHashBatch = 16u << 20;
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
  if (threads == 0) threads = sha256_lanes_from() == SIZE_MAX ? 2 : 1;  // see file_sink.h
  for (unsigned i = 0; i < threads; ++i) {
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

// A worker takes every task waiting for it at once: it writes the pieces as they come, then
// hashes them and completes the batch's finishes. While it keeps up, a batch is a piece or two
// and each file is hashed alone, as before. When it falls behind (a burst of videos, with the
// hash as the bottleneck), a batch holds many files, and sha256_update hashes them side by
// side in SIMD lanes, 16 for about the price of 4 (8 for 2.5): the backlog drains instead of
// growing. With too few files for the lanes, they are hashed one by one in the order their
// finishes came, and each is reported as soon as its own hash is done.
void FileSink::run(Worker& w) {
  std::deque<Task> batch;
  std::vector<std::pair<FileRef, std::string>> unhashed;
  std::size_t unhashed_bytes = 0;  // counted in queued_bytes_ until hashed
  std::vector<Task> finishing;     // finishes waiting for their file's last pieces to be hashed
  const std::size_t lanes_from = sha256_lanes_from();
  auto hash = [&](const File* only) {  // the pieces of `only`, or of every file when null
    std::vector<Sha256Piece> pieces;
    for (auto& [f, bytes] : unhashed)
      if ((!only || f.get() == only) && !f->dropped && !f->failed && !bytes.empty())
        pieces.push_back({&f->sha, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()});
    sha256_update(pieces);
    if (only)  // hashed: the final pass skips them
      for (auto& [f, bytes] : unhashed)
        if (f.get() == only) std::string().swap(bytes);
  };
  auto complete = [&] {
    std::vector<const File*> files;  // the ones to hash: a discarded or failed file is not
    for (auto& [f, bytes] : unhashed)
      if (!f->dropped && !f->failed && std::find(files.begin(), files.end(), f.get()) == files.end())
        files.push_back(f.get());
    if (files.size() < lanes_from) {
      for (Task& t : finishing) {
        hash(t.file.get());
        finish_file(t);
      }
      finishing.clear();
    }
    hash(nullptr);
    unhashed.clear();
    {
      std::lock_guard lk(mu_);
      queued_bytes_ -= unhashed_bytes;
    }
    unhashed_bytes = 0;
    drained_.notify_all();
    for (Task& t : finishing) finish_file(t);
    finishing.clear();
  };
  for (;;) {
    {
      std::unique_lock lk(mu_);
      w.wake.wait(lk, [&] { return stop_ || !w.tasks.empty(); });
      if (w.tasks.empty()) return;  // stopping, and nothing left to do
      batch.swap(w.tasks);
    }
    for (Task& t : batch) {
      File& f = *t.file;
      if (t.finish) {
        finishing.push_back(std::move(t));
      } else if (!t.bytes.empty()) {
        unhashed_bytes += t.bytes.size();
        if (!f.dropped && !f.failed) write_all(f, t.bytes);
        unhashed.emplace_back(std::move(t.file), std::move(t.bytes));
        if (unhashed_bytes >= kHashBatch) complete();  // bounds the memory a batch holds
      } else if (f.fd >= 0) {  // discard
        ::close(f.fd);
        f.fd = -1;
      }
    }
    batch.clear();
    complete();
  }
}

bool FileSink::write_all(File& f, const std::string& bytes) {
  const char* p = bytes.data();
  std::size_t n = bytes.size();
  while (n > 0) {
    ssize_t got = ::write(f.fd, p, n);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      f.error = "cannot write " + f.part + ": " + std::strerror(errno);
      f.failed.store(true, std::memory_order_release);
      return false;
    }
    p += got;
    n -= static_cast<std::size_t>(got);
  }
  return true;
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
