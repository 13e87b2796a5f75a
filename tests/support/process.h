#pragma once
// Test helper: runs a child process with arguments, environment overrides, a working directory
// and optional stdin; captures stdout and stderr through poll() (no pipe deadlock); enforces a
// timeout. Header-only, POSIX only, test code only.
//
//   krt::ProcResult r = krt::run_process({.args = {KR_KLINGRUN_BIN, "x.lua"}, .cwd = dir});
//   krt::Process p({...});  p.wait_output("ready", 5);  p.signal(SIGINT);  auto r = p.wait(10);

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace krt {

struct ProcOptions {
  std::vector<std::string> args;  // args[0] is the program (looked up in PATH when it has no '/')
  // Variables to set (value) or remove (nullopt); the rest of the parent's environment is kept.
  std::map<std::string, std::optional<std::string>> env;
  std::string cwd;                        // empty = the parent's
  std::optional<std::string> stdin_data;  // written then closed; nullopt = /dev/null
  bool keep_stdin_open = false;           // a pipe the caller keeps (Process::close_stdin)
  std::string stderr_path;                // non-empty: stderr goes to this file, not captured
  double timeout_s = 60;                  // run_process: kill (SIGKILL) after this long
};

struct ProcResult {
  int exit_code = -1;   // -1 when killed by a signal
  int term_signal = 0;  // the signal that ended it, 0 if it exited
  bool timed_out = false;
  std::string out, err;
  double seconds = 0;   // wall time from start to exit
  std::string describe() const {
    return "exit " + std::to_string(exit_code) + (term_signal ? " signal " + std::to_string(term_signal) : "") +
           (timed_out ? " (TIMED OUT)" : "") + "\n--- stdout ---\n" + out + "\n--- stderr ---\n" + err;
  }
};

class Process {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Process(const ProcOptions& o) : start_(Clock::now()) {
    if (o.args.empty()) throw std::invalid_argument("Process: no program");
    int in[2] = {-1, -1}, out[2], err[2] = {-1, -1};
    bool pipe_in = o.stdin_data.has_value() || o.keep_stdin_open;
    if ((pipe_in && pipe2(in, O_CLOEXEC) != 0) || pipe2(out, O_CLOEXEC) != 0 ||
        (o.stderr_path.empty() && pipe2(err, O_CLOEXEC) != 0))
      throw std::runtime_error("pipe failed");

    std::vector<std::string> envs;
    for (char** e = environ; *e; ++e) {
      std::string kv = *e;
      if (!o.env.count(kv.substr(0, kv.find('=')))) envs.push_back(kv);
    }
    for (auto& [k, v] : o.env)
      if (v) envs.push_back(k + "=" + *v);
    std::vector<char*> argv, envp;
    std::vector<std::string> args = o.args;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : envs) envp.push_back(e.data());
    envp.push_back(nullptr);

    // A child that exits before reading its stdin must not kill the test with SIGPIPE; the
    // child itself gets the default disposition back.
    ::signal(SIGPIPE, SIG_IGN);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t dfl;
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    posix_spawnattr_setsigdefault(&attr, &dfl);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (pipe_in) posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    else posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    if (o.stderr_path.empty()) posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    else posix_spawn_file_actions_addopen(&fa, 2, o.stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (!o.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, o.cwd.c_str());
    int rc = posix_spawnp(&pid_, argv[0], &fa, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (pipe_in) close(in[0]);
    close(out[1]);
    if (err[1] >= 0) close(err[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
    in_fd_ = pipe_in ? in[1] : -1;
    if (rc != 0) {
      pid_ = -1;
      close_fds();
      throw std::runtime_error("cannot start " + o.args[0] + ": " + std::strerror(rc));
    }
    if (o.stdin_data) {
      stdin_data_ = *o.stdin_data;
      keep_stdin_ = o.keep_stdin_open;
      if (stdin_data_.empty() && !keep_stdin_) close_stdin();
      else fcntl(in_fd_, F_SETFL, fcntl(in_fd_, F_GETFL) | O_NONBLOCK);
    }
  }

  ~Process() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      int st;
      waitpid(pid_, &st, 0);
    }
    close_fds();
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& out() const { return res_.out; }
  const std::string& err() const { return res_.err; }
  void signal(int sig) {
    if (pid_ > 0 && !exited_) kill(pid_, sig);
  }
  void close_stdin() {
    if (in_fd_ >= 0) close(in_fd_);
    in_fd_ = -1;
  }

  // Moves output along for up to `ms` (returns early when something arrived or both ended).
  void pump(int ms) {
    std::vector<pollfd> fds;
    if (out_fd_ >= 0) fds.push_back({out_fd_, POLLIN, 0});
    if (err_fd_ >= 0) fds.push_back({err_fd_, POLLIN, 0});
    if (in_fd_ >= 0 && stdin_off_ < stdin_data_.size()) fds.push_back({in_fd_, POLLOUT, 0});
    if (fds.empty()) {
      if (ms > 0) usleep(static_cast<useconds_t>(std::min(ms, 20)) * 1000);
      return;
    }
    if (poll(fds.data(), fds.size(), ms) <= 0) return;
    for (auto& p : fds) {
      if (!p.revents) continue;
      if (p.fd == in_fd_) {
        ssize_t n = write(in_fd_, stdin_data_.data() + stdin_off_, stdin_data_.size() - stdin_off_);
        if (n > 0) stdin_off_ += static_cast<std::size_t>(n);
        if ((n < 0 && errno != EAGAIN) || (stdin_off_ == stdin_data_.size() && !keep_stdin_)) close_stdin();
        continue;
      }
      char buf[65536];
      ssize_t n = read(p.fd, buf, sizeof buf);
      if (n > 0) {
        (p.fd == out_fd_ ? res_.out : res_.err).append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close(p.fd);
        (p.fd == out_fd_ ? out_fd_ : err_fd_) = -1;
      }
    }
  }

  // Waits until stdout+stderr contain `needle` (true) or the time runs out / the child ends (false).
  bool wait_output(const std::string& needle, double seconds) {
    auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    while (Clock::now() < deadline) {
      if (res_.out.find(needle) != std::string::npos || res_.err.find(needle) != std::string::npos) return true;
      if (out_fd_ < 0 && err_fd_ < 0) break;
      pump(left_ms(deadline));
    }
    return res_.out.find(needle) != std::string::npos || res_.err.find(needle) != std::string::npos;
  }

  // Waits for the child to exit and its output to end; SIGKILL after `seconds`.
  ProcResult wait(double seconds) {
    auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    while (!exited_ || out_fd_ >= 0 || err_fd_ >= 0) {
      if (!exited_) reap(false);
      if (exited_ && (out_fd_ >= 0 || err_fd_ >= 0)) {
        // A grandchild may hold the pipes open: drain briefly, then stop listening.
        auto drain_until = Clock::now() + std::chrono::milliseconds(500);
        while ((out_fd_ >= 0 || err_fd_ >= 0) && Clock::now() < drain_until) pump(50);
        break;
      }
      if (Clock::now() >= deadline) {
        res_.timed_out = true;
        kill(pid_, SIGKILL);
        reap(true);
        pump(0);
        break;
      }
      pump(std::min(left_ms(deadline), 50));
    }
    close_fds();
    return res_;
  }

 private:
  static int left_ms(Clock::time_point deadline) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return static_cast<int>(std::max<long long>(0, ms));
  }
  void reap(bool block) {
    int st = 0;
    pid_t r = waitpid(pid_, &st, block ? 0 : WNOHANG);
    if (r != pid_) return;
    exited_ = true;
    res_.seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    if (WIFEXITED(st)) res_.exit_code = WEXITSTATUS(st);
    else if (WIFSIGNALED(st)) res_.term_signal = WTERMSIG(st);
  }
  void close_fds() {
    for (int* fd : {&in_fd_, &out_fd_, &err_fd_})
      if (*fd >= 0) { close(*fd); *fd = -1; }
  }

  pid_t pid_ = -1;
  int in_fd_ = -1, out_fd_ = -1, err_fd_ = -1;
  std::string stdin_data_;
  std::size_t stdin_off_ = 0;
  bool keep_stdin_ = false;
  bool exited_ = false;
  Clock::time_point start_;
  ProcResult res_;
};

// Runs to completion (or the timeout) and returns what happened.
inline ProcResult run_process(const ProcOptions& o) {
  Process p(o);
  return p.wait(o.timeout_s);
}

// Starts in the background, sends `sig` once `ready_text` shows up in its output (or after
// `ready_timeout_s` regardless), then waits for the exit.
inline ProcResult run_and_signal(const ProcOptions& o, int sig, const std::string& ready_text, double ready_timeout_s = 10) {
  Process p(o);
  p.wait_output(ready_text, ready_timeout_s);
  p.signal(sig);
  return p.wait(o.timeout_s);
}

}  // namespace krt
