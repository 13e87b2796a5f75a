// `klingrun status`, `cancel`, `gc`: the state store from the outside.
#include <stdexcept>

#include "cli/commands.h"

namespace kr::cli {

int cmd_store(const Args& args) {
  throw std::runtime_error(args.command + ": the state store is not built into this version yet");
}

}  // namespace kr::cli
