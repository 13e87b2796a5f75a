// klingrun: the command line. Parses arguments, picks a backend, runs the script's host loop
// until nothing is left, and maps the outcome to an exit code.
#include <cstdio>
#include <iostream>

#include "cli/allocator.h"
#include "cli/args.h"
#include "cli/commands.h"

int main(int argc, char** argv) {
  using namespace kr::cli;
  tune_allocator();
  Args args;
  try {
    args = parse_args(argc, argv);
  } catch (const std::invalid_argument& e) {
    std::cerr << "klingrun: " << e.what() << "\n";
    return 2;
  }
  try {
    if (args.command == "help") { std::cout << help_text(); return 0; }
    if (args.command == "version") {
      std::cout << "klingrun " << KLINGRUN_VERSION << "\nallocator: " << allocator_name() << "\n";
      return 0;
    }
    if (args.command == "check") return cmd_check(args);
    if (args.command == "prices") return cmd_prices(args);
    if (args.command == "status" || args.command == "cancel" || args.command == "gc") return cmd_store(args);
    return cmd_run(args);
  } catch (const std::invalid_argument& e) {
    std::cerr << "klingrun: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "klingrun: " << e.what() << "\n";
    return 1;
  }
}
