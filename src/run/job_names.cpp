// The names of phases and error kinds, as shown to users, in --json and to Lua.
#include "run/job.h"

namespace kr::run {

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::waiting: return "waiting";
    case Phase::uploading: return "uploading";
    case Phase::submitting: return "submitting";
    case Phase::queued: return "queued";
    case Phase::running: return "running";
    case Phase::downloading: return "downloading";
    case Phase::done: return "done";
    case Phase::failed: return "failed";
    case Phase::unknown: return "unknown";
    case Phase::cancelled: return "cancelled";
  }
  return "?";
}

const char* error_kind_name(ErrorKind k) {
  switch (k) {
    case ErrorKind::rejected: return "rejected";
    case ErrorKind::auth: return "auth";
    case ErrorKind::rate_limited: return "rate_limited";
    case ErrorKind::server: return "server";
    case ErrorKind::network: return "network";
    case ErrorKind::timeout: return "timeout";
    case ErrorKind::cancelled: return "cancelled";
    case ErrorKind::unknown_submit: return "unknown_submit";
    case ErrorKind::download: return "download";
    case ErrorKind::budget: return "budget";
    case ErrorKind::state: return "state";
    case ErrorKind::claim_lost: return "claim_lost";
  }
  return "?";
}

}  // namespace kr::run
