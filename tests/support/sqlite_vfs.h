#pragma once
// Test helper: an SQLite VFS that counts (and on demand fails) fsyncs of WAL files. Header-only.

#include <sqlite3.h>

#include <map>
#include <memory>
#include <stdexcept>

namespace krt {

// A VFS that counts xSync calls on WAL files and forwards everything to the default VFS. It
// swaps each opened WAL file's method table for a copy whose xSync counts, so SQLite's own
// code (and StateStore::sync, which syncs through SQLite's file object) is what is counted.
struct CountingVfs {
  static inline int wal_syncs = 0;
  static inline sqlite3_vfs* real = nullptr;
  static inline sqlite3_vfs vfs{};
  static inline std::map<const sqlite3_io_methods*, std::unique_ptr<sqlite3_io_methods>> patched;
  static inline std::map<const sqlite3_io_methods*, const sqlite3_io_methods*> original;

  static inline bool fail_syncs = false;  // every WAL fsync fails (a dying disk) while set

  static int sync(sqlite3_file* f, int flags) {
    ++wal_syncs;
    if (fail_syncs) return SQLITE_IOERR_FSYNC;
    return original.at(f->pMethods)->xSync(f, flags);
  }
  static int open(sqlite3_vfs*, const char* name, sqlite3_file* f, int flags, int* out) {
    int rc = real->xOpen(real, name, f, flags, out);
    if (rc == SQLITE_OK && f->pMethods && (flags & SQLITE_OPEN_WAL)) {
      auto& copy = patched[f->pMethods];
      if (!copy) {
        copy = std::make_unique<sqlite3_io_methods>(*f->pMethods);
        copy->xSync = &CountingVfs::sync;
        original[copy.get()] = f->pMethods;
      }
      f->pMethods = copy.get();
    }
    return rc;
  }
  // Registered as the default VFS for the lifetime of the object.
  CountingVfs() {
    real = sqlite3_vfs_find(nullptr);
    vfs = *real;
    vfs.zName = "kr-counting";
    vfs.xOpen = &CountingVfs::open;
    if (sqlite3_vfs_register(&vfs, 1) != SQLITE_OK) throw std::runtime_error("sqlite3_vfs_register failed");
    wal_syncs = 0;
    fail_syncs = false;
  }
  ~CountingVfs() {
    fail_syncs = false;
    sqlite3_vfs_unregister(&vfs);
    sqlite3_vfs_register(real, 1);
  }
};

}  // namespace krt
