// Background WAL checkpoints. The node's writing connection runs with wal_autocheckpoint off, so
// no commit copies WAL pages into the database file on the writer's thread (with autocheckpoint
// on, every ~1000 pages one commit did, ~13 % of the core thread under load). A Checkpointer
// does it on its own thread and connection: a PASSIVE checkpoint (never waits for the writer or
// readers) every `interval`, and a TRUNCATE checkpoint when stopped.
//
// Thread-safety: start/stop from one thread; the checkpoint thread touches only its own
// connection. Errors (a full or read-only disk) are counted and retried at the next tick; the
// WAL then simply grows until they pass.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "parley/result.h"
#include "parley/store/database.h"

namespace parley::store {

class Checkpointer {
 public:
  static Result<std::unique_ptr<Checkpointer>> start(const std::string& path,
                                                     const Database::Options& options,
                                                     std::chrono::milliseconds interval);
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Stops the thread after a final TRUNCATE checkpoint; idempotent.
  void stop();

  std::int64_t checkpoints() const { return checkpoints_.load(std::memory_order_relaxed); }
  std::int64_t failures() const { return failures_.load(std::memory_order_relaxed); }
  // Passive checkpoints skipped because the WAL was busy (retried at the next tick).
  std::int64_t busy() const { return busy_.load(std::memory_order_relaxed); }

 private:
  Checkpointer(std::unique_ptr<Database> db, std::chrono::milliseconds interval);
  void run();

  std::unique_ptr<Database> db_;
  std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::atomic<std::int64_t> checkpoints_{0}, failures_{0}, busy_{0};
  std::thread thread_;
};

}  // namespace parley::store
