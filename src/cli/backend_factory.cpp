// Which backend a run uses: offline for `plan`, --backend offline, or when no key is set;
// fal otherwise.
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include "cli/args.h"
#include "run/offline_backend.h"

namespace kr::cli {

std::unique_ptr<run::Backend> make_backend(const Args& args, const std::filesystem::path& out_dir, bool plan) {
  bool has_key = std::getenv("FAL_KEY") || (std::getenv("FAL_KEY_ID") && std::getenv("FAL_KEY_SECRET"));
  std::string which = plan ? "offline" : !args.backend.empty() ? args.backend : has_key ? "fal" : "offline";
  if (which == "offline") return std::make_unique<run::OfflineBackend>(out_dir);
  if (!has_key) throw std::invalid_argument("--backend fal needs FAL_KEY (or FAL_KEY_ID and FAL_KEY_SECRET) in the environment");
  throw std::runtime_error("the fal backend is not built into this version yet");
}

}  // namespace kr::cli
