#include "parley/store/checkpointer.h"

namespace parley::store {

Result<std::unique_ptr<Checkpointer>> Checkpointer::start(const std::string& path,
                                                          const Database::Options& options,
                                                          std::chrono::milliseconds interval) {
  Database::Options o = options;
  o.create = false;
  PARLEY_ASSIGN_OR_RETURN(db, Database::open(path, o));
  return std::unique_ptr<Checkpointer>(new Checkpointer(std::move(db), interval));
}

Checkpointer::Checkpointer(std::unique_ptr<Database> db, std::chrono::milliseconds interval)
    : db_(std::move(db)), interval_(interval) {
  thread_ = std::thread([this] { run(); });
}

Checkpointer::~Checkpointer() { stop(); }

void Checkpointer::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Checkpointer::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait_for(lock, interval_, [this] { return stopping_; });
    const bool last = stopping_;
    lock.unlock();
    const Status s =
        db_->checkpoint(last ? Database::Checkpoint::kTruncate : Database::Checkpoint::kPassive);
    // A passive checkpoint that finds the WAL busy (another connection is in the middle of
    // something) is simply not this tick's: the next one catches up. Anything else fails.
    if (s.ok()) {
      checkpoints_.fetch_add(1, std::memory_order_relaxed);
    } else if (!last && s.error().code == "busy") {
      busy_.fetch_add(1, std::memory_order_relaxed);
    } else {
      failures_.fetch_add(1, std::memory_order_relaxed);
    }
    lock.lock();
    if (last) return;
  }
}

}  // namespace parley::store
