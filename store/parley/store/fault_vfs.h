// Fault injection for tests: an SQLite VFS that wraps the platform's and, while a control file
// names a fault, fails writes the way a full or a read-only disk fails them.
//
// The control file holds one word: "full" (writes fail with SQLITE_FULL, as on ENOSPC) or
// "readonly" (writes, syncs, truncations and deletions fail with an I/O error and errno EROFS, as
// on a file system remounted read-only). A missing or empty file means no fault. Reads never
// fail. The file is read on every write, so a test (or a benchmark) flips faults on a running
// node by writing or removing it. Only for tests: enabled by `storage.test_fault_file`.
#pragma once

#include <string>

#include "parley/result.h"

namespace parley::store {

// Registers the fault VFS (once per process; later calls change the control file) and returns
// its name for sqlite3_open_v2.
Result<const char*> fault_vfs(const std::string& control_file);

// The errno of the last fault injected on this thread (0 if none since the last good write).
// SQLite does not record the OS error of a failed commit, so Database asks here too.
int fault_vfs_errno();

}  // namespace parley::store
