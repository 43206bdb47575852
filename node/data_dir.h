// Data directory helpers: the lock (DATA/parleyd.lock held with flock by whoever changes the
// node's files: serve, key rotation, restore, so two of them never work on one directory at
// once) and private (0600) files.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "parley/result.h"

namespace parley::node {

// Holds DATA/parleyd.lock with flock for the lifetime of the node.
class DirLock {
 public:
  static Result<std::unique_ptr<DirLock>> take(const std::string& path, const std::string& dir) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EROFS) {
      return make_error("read_only", dir +
                                         " is on a read-only file system; parleyd stores its "
                                         "database there (remount it read-write, then start "
                                         "again). Nothing was changed.");
    }
    if (fd < 0) return make_error("io", "cannot open " + path + ": " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      char buf[32] = {};
      const auto n = ::pread(fd, buf, sizeof buf - 1, 0);
      ::close(fd);
      std::string pid = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "?";
      while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
      return make_error("locked", "another parleyd (pid " + pid + ") is already serving " + dir);
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
      ::close(fd);
      return make_error("io", "cannot write " + path);
    }
    return std::unique_ptr<DirLock>(new DirLock(fd));
  }
  ~DirLock() { ::close(fd_); }

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_;
};

// Creates `path` (it must not exist) with mode 0600 and `content`, fsynced.
inline Status write_private_file(const std::string& path, const std::string& content) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return make_error("io", "cannot create " + path + ": " + std::strerror(errno));
  const bool ok =
      ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()) &&
      ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return make_error("io", "cannot write " + path);
  return ok_status();
}

}  // namespace parley::node
