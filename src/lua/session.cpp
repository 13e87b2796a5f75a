// The embedding Session: backend choice, state store and manifest, runner and Lua host in one
// object. The CLI is one of its users.
#include "klingrun/klingrun.h"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "lua/host.h"
#include "run/fal_backend.h"
#include "run/manifest.h"
#include "run/offline_backend.h"
#include "run/state_store.h"

namespace klingrun {

struct Session::Impl {
  Options opts;
  std::unique_ptr<kr::PriceTable> prices;
  std::unique_ptr<kr::run::StateStore> store;
  std::unique_ptr<kr::run::ManifestWriter> manifest;
  std::unique_ptr<kr::run::Runner> runner;
  std::unique_ptr<kr::lua::LuaHost> host;
  std::string backend;
  bool started = false;

  void build(const std::string& script) {
    std::filesystem::path out_dir = std::filesystem::path(opts.out) / script;
    kr::net::FalConfig config = kr::net::FalConfig::from_env();
    if (!opts.queue_url.empty()) config.queue_url = opts.queue_url;
    if (!opts.rest_url.empty()) config.rest_url = opts.rest_url;
    backend = !opts.backend.empty() ? opts.backend : config.key.empty() ? "offline" : "fal";
    if (backend != "offline" && backend != "fal") throw std::invalid_argument("backend \"" + backend + "\" is not offline or fal");
    if (backend == "fal" && config.key.empty())
      throw std::invalid_argument("the fal backend needs FAL_KEY (or FAL_KEY_ID and FAL_KEY_SECRET) in the environment");
    if (backend == "fal")
      if (std::string why = config.problem(); !why.empty()) throw std::invalid_argument(why);

    kr::run::RunnerOptions ro;
    ro.out_dir = out_dir;
    ro.script = script;
    ro.concurrency = opts.concurrency;
    ro.budget = opts.budget;
    if (!opts.prices_file.empty()) prices = std::make_unique<kr::PriceTable>(kr::PriceTable::from_file(opts.prices_file));
    ro.prices = prices ? prices.get() : &kr::PriceTable::builtin();
    std::unique_ptr<kr::run::Backend> b;
    if (backend == "offline") {
      b = std::make_unique<kr::run::OfflineBackend>(out_dir);
    } else {
      // The state store and manifest guard money: they exist for runs that reach fal.
      store = kr::run::StateStore::open(opts.state_dir.empty() ? opts.out + "/.klingrun" : opts.state_dir);
      manifest = std::make_unique<kr::run::ManifestWriter>(out_dir / "manifest.json", script);
      ro.store = store.get();
      ro.manifest = manifest.get();
      ro.fresh = opts.fresh;
      ro.resubmit_unknown = opts.resubmit_unknown;
      b = std::make_unique<kr::run::FalBackend>(config, out_dir);
    }
    runner = std::make_unique<kr::run::Runner>(ro, std::move(b));
    host = std::make_unique<kr::lua::LuaHost>(*runner, opts.lua);
    host->open_module();
  }
};

Session::Session(Options opts) : impl_(std::make_unique<Impl>()) { impl_->opts = std::move(opts); }

Session::~Session() {
  if (impl_->started) finish();
}

kr::run::Runner& Session::runner() {
  if (!impl_->runner) { impl_->build(impl_->opts.script); impl_->started = true; }
  return *impl_->runner;
}

lua_State* Session::lua() {
  runner();
  return impl_->host->state();
}

const std::string& Session::backend_name() const { return impl_->backend; }

bool Session::run_script(const std::string& path, const std::vector<std::string>& args) {
  if (!impl_->runner) {
    impl_->build(std::filesystem::path(path).stem().string());
    impl_->started = true;
  }
  return impl_->host->start_script(path, args);
}

kr::run::Job& Session::submit(kr::Request request) { return runner().submit(std::move(request)); }

void Session::tick(int max_wait_ms) {
  if (impl_->host) impl_->host->tick(max_wait_ms);
}

bool Session::done() const { return !impl_->host || impl_->host->done(); }

const std::optional<std::string>& Session::error() const {
  static const std::optional<std::string> none;
  return impl_->host ? impl_->host->error() : none;
}

int Session::exit_code() const {
  if (error()) return impl_->host->error_code();
  if (!impl_->runner) return 0;
  for (auto& j : impl_->runner->jobs())
    if (j->phase != kr::run::Phase::done) return kr::lua::exit_failed;
  return 0;
}

void Session::interrupt(bool cancel_on_fal) {
  if (!impl_->runner) return;
  if (cancel_on_fal) impl_->runner->cancel_all();
  else impl_->runner->stop_starting();
}

void Session::finish() {
  if (!impl_->runner) return;
  if (impl_->backend == "offline" && !impl_->runner->jobs().empty()) impl_->runner->write_plan();
  impl_->runner->flush_manifest(true);
  if (impl_->store) impl_->store->release();
  impl_->started = false;
}

}  // namespace klingrun
