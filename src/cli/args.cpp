#include "cli/args.h"

#include <stdexcept>

namespace kr::cli {
namespace {

bool is_command(const std::string& s) {
  return s == "run" || s == "plan" || s == "check" || s == "prices" || s == "status" || s == "cancel" || s == "gc";
}

double parse_number(const std::string& flag, const std::string& v) {
  try {
    size_t used = 0;
    double d = std::stod(v, &used);
    if (used != v.size() || d < 0) throw std::invalid_argument("");
    return d;
  } catch (...) {
    throw std::invalid_argument(flag + ": \"" + v + "\" is not a number ≥ 0");
  }
}

}  // namespace

Args parse_args(int argc, char** argv) {
  Args a;
  std::vector<std::string> v(argv + 1, argv + argc);
  size_t i = 0;
  if (i < v.size() && is_command(v[i])) a.command = v[i++];
  bool run_like = a.command == "run" || a.command == "plan";

  auto value = [&](const std::string& flag) -> std::string {
    if (i + 1 >= v.size()) throw std::invalid_argument(flag + " needs a value");
    return v[++i];
  };
  for (; i < v.size(); ++i) {
    const std::string& s = v[i];
    // In `klingrun script.lua ...` everything after the script belongs to the script; `plan`
    // also takes its own flags after the script, script arguments then follow `--`.
    if (!a.script.empty() && (a.command == "run" || s == "--")) {
      size_t from = (s == "--") ? i + 1 : i;
      a.script_args.assign(v.begin() + static_cast<long>(from), v.end());
      break;
    }
    if (s == "--help" || s == "-h") { a.command = "help"; return a; }
    if (s == "--version" || s == "-V") { a.command = "version"; return a; }
    if (s == "--json") a.json = true;
    else if (s == "--quiet" || s == "-q") a.quiet = true;
    else if (s == "--fresh") a.fresh = true;
    else if (s == "--resubmit-unknown") a.resubmit_unknown = true;
    else if (s == "--cancel-on-interrupt") a.cancel_on_interrupt = true;
    else if (s == "--all") a.all = true;
    else if (s == "--offline") a.backend = "offline";
    else if (s == "--backend") {
      a.backend = value(s);
      if (a.backend != "offline" && a.backend != "fal") throw std::invalid_argument("--backend: \"" + a.backend + "\" is not offline or fal");
    } else if (s == "--budget") a.budget = parse_number(s, value(s));
    else if (s == "--concurrency" || s == "-j") {
      double n = parse_number(s, value(s));
      if (n < 1 || n != static_cast<int>(n)) throw std::invalid_argument(s + ": needs a whole number ≥ 1");
      a.concurrency = static_cast<int>(n);
    } else if (s == "--out" || s == "-o") a.out = value(s);
    else if (s == "--state") a.state = value(s);
    else if (s == "--prices") a.prices = value(s);
    else if (s == "--endpoint" || s == "-e") a.endpoint = value(s);
    else if (s == "--queue-url") a.queue_url = value(s);
    else if (s == "--rest-url") a.rest_url = value(s);
    else if (s.size() > 1 && s[0] == '-' && s != "-") throw std::invalid_argument("unknown option " + s + " (see klingrun --help)");
    else if (a.command == "run" && a.script.empty() && is_command(s)) { a.command = s; run_like = s == "plan"; }  // options may come first
    else if (run_like && a.script.empty()) a.script = s;
    else a.positional.push_back(s);
  }
  if (run_like && a.script.empty()) {
    if (a.command == "run" && argc <= 1) { a.command = "help"; return a; }
    throw std::invalid_argument("no script given (usage: klingrun [plan] SCRIPT.lua [args...])");
  }
  if (!a.positional.empty() && run_like) throw std::invalid_argument("unexpected argument \"" + a.positional.front() + "\"");
  return a;
}

std::string help_text() {
  return R"(klingrun — script Kling video generation on fal.ai from Lua

Usage:
  klingrun [options] SCRIPT.lua [script args...]   run a script (offline without FAL_KEY)
  klingrun plan SCRIPT.lua [--json] [-- args...]   run offline; print the shot list and total cost
  klingrun check --endpoint ID FILE.json           validate one raw fal input ("-" reads stdin)
  klingrun prices [--json]                         the price table in use
  klingrun status [--state DIR] [--json]           jobs in the state store
  klingrun cancel NAME|--all [--state DIR]         cancel jobs on fal
  klingrun gc [--state DIR]                        forget records whose outputs were deleted
  klingrun --version | --help

Options:
  --backend offline|fal   where jobs go (default: fal when FAL_KEY is set, else offline)
  --offline               same as --backend offline
  --budget DOLLARS        refuse any job that would take this run's spend above DOLLARS
  --concurrency N, -j N   jobs in flight on fal at once (default 2)
  --out DIR, -o DIR       output root; files go to DIR/<script>/ (default out)
  --state DIR             state store directory (default <out>/.klingrun)
  --prices FILE           replace the built-in price table (same format as data/prices.json)
  --queue-url URL         fal queue base URL (default $FAL_QUEUE_URL or https://queue.fal.run)
  --rest-url URL          fal REST base URL (default $FAL_REST_URL or https://rest.fal.ai)
  --fresh                 generate anew even when a stored result exists
  --resubmit-unknown      resubmit jobs whose earlier submit had an unknown outcome
  --cancel-on-interrupt   on Ctrl-C also cancel jobs in flight on fal
  --json                  plan/prices/status: JSON on stdout; run: one JSON event per line
  --quiet, -q             no progress output

Endpoints (--endpoint, or `endpoint` in a spec): full fal ids such as
fal-ai/kling-video/v3/pro/text-to-video, or short forms FAMILY/TIER/MODE:
  v3/pro/t2v  v3/pro/i2v  v3/standard/t2v  v3/standard/i2v
  o3/pro/t2v  o3/pro/i2v  o3/pro/r2v  o3/standard/t2v  o3/standard/i2v  o3/standard/r2v
  v2.6/pro/t2v  v2.6/pro/i2v  v2.5-turbo/pro/t2v  v2.5-turbo/pro/i2v

Environment: FAL_KEY (or FAL_KEY_ID + FAL_KEY_SECRET), FAL_QUEUE_URL, FAL_REST_URL, NO_COLOR,
KLINGRUN_LUA_PATH (extra lua-lib directory), CURL_CA_BUNDLE or SSL_CERT_FILE (CA certificates
to trust instead of the system's, e.g. behind a proxy that re-signs TLS), KLINGRUN_FOLLOW_OUTAGE
(seconds a job fal accepted is followed through failing status calls; default 600).

Exit codes: 0 ok, 1 script or validation error, 2 usage error, 3 generation failed,
4 budget exceeded, 130 interrupted.

Examples:
  klingrun plan scripts/examples/multi_shot.lua
  klingrun plan --json scripts/examples/storyboard_60s.lua > plan.json
  klingrun --budget 5 scripts/examples/procedural.lua
  echo '{"prompt":"a fox","duration":"5"}' | klingrun check --endpoint v3/pro/t2v -
)";
}

}  // namespace kr::cli
