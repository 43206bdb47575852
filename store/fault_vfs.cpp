#include "parley/store/fault_vfs.h"

#include <sqlite3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace parley::store {

namespace {

constexpr const char* kName = "parley-faults";

enum class Fault { kNone, kFull, kReadOnly };

std::mutex control_mutex;
std::string control_path;
sqlite3_vfs* real_vfs = nullptr;
sqlite3_vfs fault_vfs_def;
sqlite3_io_methods fault_methods;
// The errno of the last injected failure on this thread: SQLite asks for it (xGetLastError) only
// after rolling back, by when errno itself may have changed.
thread_local int injected_errno = 0;

Fault current_fault() {
  std::string path;
  {
    std::lock_guard<std::mutex> lock(control_mutex);
    path = control_path;
  }
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return Fault::kNone;
  char word[16] = {};
  const std::size_t n = std::fread(word, 1, sizeof word - 1, f);
  std::fclose(f);
  const std::string w(word, n);
  if (w.rfind("full", 0) == 0) return Fault::kFull;
  if (w.rfind("readonly", 0) == 0) return Fault::kReadOnly;
  return Fault::kNone;
}

// Our file object: the VFS's own file struct follows it in the same allocation.
struct FaultFile {
  sqlite3_file base;
  sqlite3_file* real() { return reinterpret_cast<sqlite3_file*>(this + 1); }
};

FaultFile* self(sqlite3_file* f) { return reinterpret_cast<FaultFile*>(f); }

// The error a write gets under the current fault, or SQLITE_OK.
int write_fault(int io_error) {
  switch (current_fault()) {
    case Fault::kFull:
      errno = injected_errno = ENOSPC;
      return SQLITE_FULL;
    case Fault::kReadOnly:
      errno = injected_errno = EROFS;
      return io_error;
    case Fault::kNone:
      break;
  }
  injected_errno = 0;
  return SQLITE_OK;
}

int x_close(sqlite3_file* f) {
  auto* r = self(f)->real();
  return r->pMethods ? r->pMethods->xClose(r) : SQLITE_OK;
}
int x_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  auto* r = self(f)->real();
  return r->pMethods->xRead(r, buf, n, off);
}
int x_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  if (const int rc = write_fault(SQLITE_IOERR_WRITE); rc != SQLITE_OK) return rc;
  auto* r = self(f)->real();
  return r->pMethods->xWrite(r, buf, n, off);
}
int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (current_fault() == Fault::kReadOnly) return write_fault(SQLITE_IOERR_TRUNCATE);
  auto* r = self(f)->real();
  return r->pMethods->xTruncate(r, size);
}
int x_sync(sqlite3_file* f, int flags) {
  if (current_fault() == Fault::kReadOnly) return write_fault(SQLITE_IOERR_FSYNC);
  auto* r = self(f)->real();
  return r->pMethods->xSync(r, flags);
}
int x_file_size(sqlite3_file* f, sqlite3_int64* size) {
  auto* r = self(f)->real();
  return r->pMethods->xFileSize(r, size);
}
int x_lock(sqlite3_file* f, int level) {
  auto* r = self(f)->real();
  return r->pMethods->xLock(r, level);
}
int x_unlock(sqlite3_file* f, int level) {
  auto* r = self(f)->real();
  return r->pMethods->xUnlock(r, level);
}
int x_check_reserved(sqlite3_file* f, int* out) {
  auto* r = self(f)->real();
  return r->pMethods->xCheckReservedLock(r, out);
}
int x_file_control(sqlite3_file* f, int op, void* arg) {
  auto* r = self(f)->real();
  return r->pMethods->xFileControl(r, op, arg);
}
int x_sector_size(sqlite3_file* f) {
  auto* r = self(f)->real();
  return r->pMethods->xSectorSize(r);
}
int x_device_characteristics(sqlite3_file* f) {
  auto* r = self(f)->real();
  return r->pMethods->xDeviceCharacteristics(r);
}
int x_shm_map(sqlite3_file* f, int page, int size, int extend, void volatile** out) {
  auto* r = self(f)->real();
  return r->pMethods->xShmMap(r, page, size, extend, out);
}
int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  auto* r = self(f)->real();
  return r->pMethods->xShmLock(r, offset, n, flags);
}
void x_shm_barrier(sqlite3_file* f) {
  auto* r = self(f)->real();
  r->pMethods->xShmBarrier(r);
}
int x_shm_unmap(sqlite3_file* f, int delete_flag) {
  auto* r = self(f)->real();
  return r->pMethods->xShmUnmap(r, delete_flag);
}
int x_fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** out) {
  auto* r = self(f)->real();
  return r->pMethods->xFetch(r, off, n, out);
}
int x_unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  auto* r = self(f)->real();
  return r->pMethods->xUnfetch(r, off, p);
}

int x_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  auto* ff = self(f);
  ff->base.pMethods = nullptr;
  const int rc = real_vfs->xOpen(real_vfs, name, ff->real(), flags, out_flags);
  if (rc == SQLITE_OK) ff->base.pMethods = &fault_methods;
  return rc;
}
int x_delete(sqlite3_vfs*, const char* name, int sync_dir) {
  if (current_fault() == Fault::kReadOnly) return write_fault(SQLITE_IOERR_DELETE);
  return real_vfs->xDelete(real_vfs, name, sync_dir);
}
int x_access(sqlite3_vfs*, const char* name, int flags, int* out) {
  return real_vfs->xAccess(real_vfs, name, flags, out);
}
int x_full_pathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return real_vfs->xFullPathname(real_vfs, name, n, out);
}
int x_randomness(sqlite3_vfs*, int n, char* out) { return real_vfs->xRandomness(real_vfs, n, out); }
int x_sleep(sqlite3_vfs*, int us) { return real_vfs->xSleep(real_vfs, us); }
int x_current_time(sqlite3_vfs*, double* out) { return real_vfs->xCurrentTime(real_vfs, out); }
int x_last_error(sqlite3_vfs*, int n, char* out) {
  if (injected_errno != 0) return injected_errno;
  return real_vfs->xGetLastError(real_vfs, n, out);
}
int x_current_time_int64(sqlite3_vfs*, sqlite3_int64* out) {
  return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

}  // namespace

int fault_vfs_errno() { return injected_errno; }

Result<const char*> fault_vfs(const std::string& control_file) {
  static std::once_flag registered;
  static int register_rc = SQLITE_OK;
  {
    std::lock_guard<std::mutex> lock(control_mutex);
    control_path = control_file;
  }
  std::call_once(registered, [] {
    real_vfs = sqlite3_vfs_find(nullptr);
    if (!real_vfs || real_vfs->iVersion < 2) {
      register_rc = SQLITE_ERROR;
      return;
    }
    fault_methods = sqlite3_io_methods{};
    fault_methods.iVersion = 3;
    fault_methods.xClose = x_close;
    fault_methods.xRead = x_read;
    fault_methods.xWrite = x_write;
    fault_methods.xTruncate = x_truncate;
    fault_methods.xSync = x_sync;
    fault_methods.xFileSize = x_file_size;
    fault_methods.xLock = x_lock;
    fault_methods.xUnlock = x_unlock;
    fault_methods.xCheckReservedLock = x_check_reserved;
    fault_methods.xFileControl = x_file_control;
    fault_methods.xSectorSize = x_sector_size;
    fault_methods.xDeviceCharacteristics = x_device_characteristics;
    fault_methods.xShmMap = x_shm_map;
    fault_methods.xShmLock = x_shm_lock;
    fault_methods.xShmBarrier = x_shm_barrier;
    fault_methods.xShmUnmap = x_shm_unmap;
    fault_methods.xFetch = x_fetch;
    fault_methods.xUnfetch = x_unfetch;

    fault_vfs_def = sqlite3_vfs{};
    fault_vfs_def.iVersion = 2;
    fault_vfs_def.szOsFile = static_cast<int>(sizeof(FaultFile)) + real_vfs->szOsFile;
    fault_vfs_def.mxPathname = real_vfs->mxPathname;
    fault_vfs_def.zName = kName;
    fault_vfs_def.xOpen = x_open;
    fault_vfs_def.xDelete = x_delete;
    fault_vfs_def.xAccess = x_access;
    fault_vfs_def.xFullPathname = x_full_pathname;
    fault_vfs_def.xDlOpen = [](sqlite3_vfs*, const char* p) {
      return real_vfs->xDlOpen(real_vfs, p);
    };
    fault_vfs_def.xDlError = [](sqlite3_vfs*, int n, char* out) {
      real_vfs->xDlError(real_vfs, n, out);
    };
    fault_vfs_def.xDlSym = [](sqlite3_vfs*, void* h, const char* s) {
      return real_vfs->xDlSym(real_vfs, h, s);
    };
    fault_vfs_def.xDlClose = [](sqlite3_vfs*, void* h) { real_vfs->xDlClose(real_vfs, h); };
    fault_vfs_def.xRandomness = x_randomness;
    fault_vfs_def.xSleep = x_sleep;
    fault_vfs_def.xCurrentTime = x_current_time;
    fault_vfs_def.xGetLastError = x_last_error;
    fault_vfs_def.xCurrentTimeInt64 = x_current_time_int64;
    register_rc = sqlite3_vfs_register(&fault_vfs_def, 0);
  });
  if (register_rc != SQLITE_OK) {
    return make_error("internal", "cannot register the fault-injection VFS");
  }
  return kName;
}

}  // namespace parley::store
