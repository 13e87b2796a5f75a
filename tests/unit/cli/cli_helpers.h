// Helpers for the cli tests: run the klingrun binary as a child process (offline: no FAL_* keys
// in its environment) in a fresh temporary directory, and read what it wrote.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "files.h"

namespace clitest {

namespace fs = std::filesystem;
using nlohmann::json;

struct Result {
  int exit_code = -1;      // exit status, or 128 + signal when the child was killed
  bool signaled = false;
  bool timed_out = false;
  std::string out, err;
};

inline std::string bin() { return KR_KLINGRUN_BIN; }
inline fs::path source_dir() { return KR_SOURCE_DIR; }
inline fs::path examples_dir() { return source_dir() / "scripts" / "examples"; }
inline std::string example(const std::string& stem) { return (examples_dir() / (stem + ".lua")).string(); }

// Runs klingrun with `args` in directory `cwd`, feeding `stdin_text`; `env` entries are set in
// the child (FAL_KEY, FAL_KEY_ID and FAL_KEY_SECRET are always removed first). All three pipes
// are served with poll(), so a child writing a lot to both outputs cannot deadlock.
inline Result run(const std::vector<std::string>& args, const std::string& stdin_text = "",
                  const std::map<std::string, std::string>& env = {}, const fs::path& cwd = fs::current_path(),
                  int timeout_s = 120) {
  static const bool sigpipe_ignored = [] { ::signal(SIGPIPE, SIG_IGN); return true; }();
  (void)sigpipe_ignored;

  int in_p[2], out_p[2], err_p[2];
  if (::pipe(in_p) != 0 || ::pipe(out_p) != 0 || ::pipe(err_p) != 0) throw std::runtime_error("pipe failed");

  std::vector<std::string> argv_s;
  argv_s.push_back(bin());
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  std::string cwd_s = cwd.string();

  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(in_p[0], 0);
    ::dup2(out_p[1], 1);
    ::dup2(err_p[1], 2);
    for (int fd : {in_p[0], in_p[1], out_p[0], out_p[1], err_p[0], err_p[1]}) ::close(fd);
    ::signal(SIGPIPE, SIG_DFL);
    if (::chdir(cwd_s.c_str()) != 0) ::_exit(126);
    ::unsetenv("FAL_KEY");
    ::unsetenv("FAL_KEY_ID");
    ::unsetenv("FAL_KEY_SECRET");
    for (auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(in_p[0]);
  ::close(out_p[1]);
  ::close(err_p[1]);

  Result r;
  int in_fd = in_p[1], out_fd = out_p[0], err_fd = err_p[0];
  ::fcntl(in_fd, F_SETFL, ::fcntl(in_fd, F_GETFL) | O_NONBLOCK);
  size_t written = 0;
  if (stdin_text.empty()) { ::close(in_fd); in_fd = -1; }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  char buf[65536];
  while (out_fd >= 0 || err_fd >= 0) {
    std::vector<pollfd> fds;
    if (in_fd >= 0) fds.push_back({in_fd, POLLOUT, 0});
    if (out_fd >= 0) fds.push_back({out_fd, POLLIN, 0});
    if (err_fd >= 0) fds.push_back({err_fd, POLLIN, 0});
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      r.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::min<long long>(left, 1000)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    for (auto& p : fds) {
      if (!p.revents) continue;
      if (p.fd == in_fd) {
        ssize_t w = ::write(in_fd, stdin_text.data() + written, stdin_text.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 && errno != EAGAIN && errno != EINTR) written = stdin_text.size();  // reader gone
        if (written >= stdin_text.size()) { ::close(in_fd); in_fd = -1; }
      } else {
        ssize_t got = ::read(p.fd, buf, sizeof buf);
        if (got > 0) {
          (p.fd == out_fd ? r.out : r.err).append(buf, static_cast<size_t>(got));
        } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
          ::close(p.fd);
          (p.fd == out_fd ? out_fd : err_fd) = -1;
        }
      }
    }
  }
  for (int fd : {in_fd, out_fd, err_fd})
    if (fd >= 0) ::close(fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) { r.signaled = true; r.exit_code = 128 + WTERMSIG(status); }
  return r;
}

// A fresh directory (tests/support/files.h) that klingrun runs in.
class TempDir : public krt::TempDir {
 public:
  TempDir() : krt::TempDir("klingrun-cli") {}

  // Writes a file (relative to the directory) and returns its absolute path.
  fs::path write(const std::string& rel, const std::string& text) const {
    fs::path p = path() / rel;
    fs::create_directories(p.parent_path());
    std::ofstream f(p, std::ios::binary);
    f << text;
    return p;
  }
  // klingrun with this directory as the working directory.
  Result run(const std::vector<std::string>& args, const std::string& stdin_text = "",
             const std::map<std::string, std::string>& env = {}) const {
    return clitest::run(args, stdin_text, env, path());
  }
};

inline std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return "";
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream is(text);
  while (std::getline(is, cur)) out.push_back(cur);
  return out;
}

inline std::vector<std::string> nonempty_lines(const std::string& text) {
  std::vector<std::string> out;
  for (auto& l : lines(text))
    if (!l.empty()) out.push_back(l);
  return out;
}

inline bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

inline bool has_line(const std::string& text, const std::string& line) {
  for (auto& l : lines(text))
    if (l == line) return true;
  return false;
}

inline bool matches(const std::string& s, const std::string& re) { return std::regex_search(s, std::regex(re)); }

// A crash or a C++ internal leaking into what the user reads.
inline bool looks_internal(const std::string& err) {
  return contains(err, "terminate called") || contains(err, "std::") || contains(err, "exception");
}

// Every prompt text of a fal input: `prompt` and each multi_prompt[i].prompt.
inline std::vector<std::string> prompts_of(const json& input) {
  std::vector<std::string> out;
  if (input.contains("prompt") && input["prompt"].is_string()) out.push_back(input["prompt"]);
  if (input.contains("multi_prompt") && input["multi_prompt"].is_array())
    for (auto& s : input["multi_prompt"])
      if (s.contains("prompt") && s["prompt"].is_string()) out.push_back(s["prompt"]);
  return out;
}

inline std::string join(const std::vector<std::string>& v, const std::string& sep = "\n") {
  std::string out;
  for (auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

// All example scripts, sorted by name.
inline std::vector<fs::path> example_scripts() {
  std::vector<fs::path> out;
  for (auto& e : fs::directory_iterator(examples_dir()))
    if (e.is_regular_file() && e.path().extension() == ".lua") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// The 14 endpoints of the catalog (klingrun --help lists their short forms).
inline const std::vector<std::string>& all_endpoints() {
  static const std::vector<std::string> v = {
      "v3/pro/text-to-video",          "v3/pro/image-to-video",          "v3/standard/text-to-video",
      "v3/standard/image-to-video",    "o3/pro/text-to-video",           "o3/pro/image-to-video",
      "o3/pro/reference-to-video",     "o3/standard/text-to-video",      "o3/standard/image-to-video",
      "o3/standard/reference-to-video", "v2.6/pro/text-to-video",        "v2.6/pro/image-to-video",
      "v2.5-turbo/pro/text-to-video",  "v2.5-turbo/pro/image-to-video"};
  return v;
}

}  // namespace clitest
