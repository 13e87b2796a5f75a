#pragma once
// FileSink: writes and hashes downloaded bytes on background threads.
//
// Why: SHA-256 runs at 4-5 ms per MiB here (one stream at a time), and writing into the page
// cache costs about as much as receiving; on the loop thread, a burst of finished jobs (50
// videos at once) held every other transfer, status event and submit for hundreds of ms. The
// loop thread now only copies each chunk into a queue; a sink thread writes it, hashes it, and
// renames the finished file. The hash, not the disk or the link, is what limits a burst of
// downloads. Where the CPU has SIMD lanes for it (net/sha256_lanes.h), one thread: when it
// falls behind, the files waiting for it are hashed side by side, 16 for about the price of 4,
// and one thread sees them all (alone, it still hashes one file at 200+ MB/s, more than a
// download from fal's CDN brings). Without lanes, two threads, each hashing its files one by one.
//
// A File is one attempt's "<dest>.part", opened by the caller. write() queues bytes, finish()
// closes and renames into place and reports the SHA-256 on the loop's thread, discard()
// removes the .part at once (a retry may create a new one under the same name meanwhile: the
// old descriptor then writes to the removed file only). Every File ends in exactly one
// finish() or discard(). All calls are made from the loop's thread.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "net/curl_loop.h"

namespace kr::net {

class FileSink {
 public:
  struct File;
  using FileRef = std::shared_ptr<File>;
  // The hex SHA-256 of every byte written, or "" with `error` set.
  struct Outcome {
    std::string sha256;
    std::string error;
  };

  // `threads`: files are spread over them (a file stays on one); 0 chooses as said above.
  // `max_queued`: bytes waiting for the threads above which write() blocks (back-pressure).
  explicit FileSink(Loop& loop, unsigned threads = 0, std::size_t max_queued = 64u << 20);
  ~FileSink();  // ends after the queued work; files never finished are removed
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  // Takes over `fd` (open for writing at offset 0) of the file at `part`.
  FileRef open(int fd, std::string part);
  // Queues the chunk (copied, and gathered into larger pieces). False when an earlier write of
  // this file failed (see error()).
  bool write(const FileRef& f, std::string_view chunk);
  std::string error(const FileRef& f) const;
  // Closes the file and renames it to `dest`; then runs `done` from the loop's run_once().
  void finish(const FileRef& f, std::string dest, std::function<void(const Outcome&)> done);
  void discard(const FileRef& f);

 private:
  struct Task {
    FileRef file;
    std::string bytes;  // a piece to write, unless finish or close
    std::string dest;   // rename target, for finish
    std::function<void(const Outcome&)> done;
    bool finish = false;
  };
  struct Worker {
    std::condition_variable wake;
    std::deque<Task> tasks;
    std::thread thread;
  };
  void push(const FileRef& f, Task t);
  void flush(const FileRef& f);
  void run(Worker& w);
  static bool write_all(File& f, const std::string& bytes);
  void finish_file(Task& t);

  Loop& loop_;
  std::size_t max_queued_;
  mutable std::mutex mu_;  // guards every worker's tasks, queued_bytes_ and stop_
  std::condition_variable drained_;
  std::size_t queued_bytes_ = 0;
  bool stop_ = false;
  unsigned next_worker_ = 0;
  std::deque<Worker> workers_;
};

}  // namespace kr::net
