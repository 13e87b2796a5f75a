// The executables' allocator (mimalloc when the build has it; see CMakeLists.txt).
#pragma once
#include <cstdlib>
#include <string>
#ifdef KLINGRUN_MIMALLOC
#include <mimalloc.h>
#endif

namespace kr::cli {

// Call first thing in main(). A plan of 100,000 jobs grows the heap by ~180 MB; in 2 MiB pages
// that is a few hundred page faults instead of ~45,000 (about a tenth of `plan`'s time).
inline void tune_allocator() {
#ifdef KLINGRUN_MIMALLOC
  mi_option_enable(mi_option_large_os_pages);
#endif
}

// Which allocator malloc() really is: mimalloc only counts when it interposed the C library's.
inline std::string allocator_name() {
#ifdef KLINGRUN_MIMALLOC
  char* p = static_cast<char*>(std::malloc(16));
  if (p) *p = 0;  // (GCC warns about passing untouched memory on)
  bool ours = p && mi_is_in_heap_region(p);
  std::free(p);
  int v = mi_version();
  std::string version = std::to_string(v / 100) + "." + std::to_string(v / 10 % 10) + "." + std::to_string(v % 10);
  return ours ? "mimalloc " + version : "system malloc (mimalloc " + version + " linked but not in use)";
#else
  return "system malloc";
#endif
}

}  // namespace kr::cli
