// The embedded default without a key: every job "completes" at once with its normalized request
// and its cost, and nothing leaves the machine.
#pragma once
#include <filesystem>
#include <vector>

#include "run/backend.h"

namespace kr::run {

class OfflineBackend : public Backend {
 public:
  explicit OfflineBackend(const std::filesystem::path& out_dir) : out_prefix_((out_dir / "").string()) {}
  std::string name() const override { return "offline"; }
  void start(Job& job) override { ready_.push_back(&job); }
  void poll(int max_wait_ms) override;
  bool busy() const override { return !ready_.empty(); }
  bool limited() const override { return false; }
  void cancel(Job& job) override;

 private:
  std::string out_prefix_;
  std::vector<Job*> ready_;
};

}  // namespace kr::run
