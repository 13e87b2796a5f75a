// Which backend a run uses: offline for `plan`, --backend offline, or when no key is set;
// fal otherwise.
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include "cli/args.h"
#include "run/fal_backend.h"
#include "run/offline_backend.h"

namespace kr::cli {

std::unique_ptr<run::Backend> make_backend(const Args& args, const std::filesystem::path& out_dir, bool plan) {
  net::FalConfig config = net::FalConfig::from_env();
  if (!args.queue_url.empty()) config.queue_url = args.queue_url;
  if (!args.rest_url.empty()) config.rest_url = args.rest_url;
  std::string which = plan ? "offline" : !args.backend.empty() ? args.backend : config.key.empty() ? "offline" : "fal";
  if (which == "offline") return std::make_unique<run::OfflineBackend>(out_dir);
  if (config.key.empty()) throw std::invalid_argument("--backend fal needs FAL_KEY (or FAL_KEY_ID and FAL_KEY_SECRET) in the environment");
  return std::make_unique<run::FalBackend>(config, out_dir);
}

}  // namespace kr::cli
