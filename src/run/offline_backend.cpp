#include "run/offline_backend.h"

#include <algorithm>

namespace kr::run {

// Jobs finish on the next poll rather than inside start(), so a script sees the same coroutine
// model offline as with fal: submit returns, wait yields, tick resumes.
void OfflineBackend::poll(int) {
  auto batch = std::move(ready_);
  ready_.clear();
  for (Job* job : batch) {
    job->offline = true;
    job->phase = Phase::done;
    job->video_url.clear();
    job->video_url.reserve(10 + job->name.size());
    job->video_url.append("offline://").append(job->name);
    job->video_path.clear();
    job->video_path.reserve(out_prefix_.size() + job->name.size() + 4);
    job->video_path.append(out_prefix_).append(job->name).append(".mp4");  // where the file would land; nothing is written
    if (hooks_.finished) hooks_.finished(*job);
  }
}

void OfflineBackend::cancel(Job& job) {
  auto it = std::find(ready_.begin(), ready_.end(), &job);
  if (it == ready_.end()) return;
  ready_.erase(it);
  job.phase = Phase::cancelled;
  job.fail(JobError{ErrorKind::cancelled, "cancelled before it ran", {}, "", ""});
  if (hooks_.finished) hooks_.finished(job);
}

}  // namespace kr::run
