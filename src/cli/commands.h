// One function per command; each returns the process exit code.
#pragma once
#include "cli/args.h"

namespace kr { class PriceTable; }

namespace kr::cli {

int cmd_run(const Args& args);     // run and plan
int cmd_check(const Args& args);
int cmd_prices(const Args& args);
int cmd_store(const Args& args);   // status, cancel, gc

// --state DIR, else <out>/.klingrun: the store lives beside the outputs it describes.
std::string state_dir(const Args& args);

// The table --prices names, or the built-in one. Lives as long as the process.
const PriceTable& price_table(const Args& args);

}  // namespace kr::cli
