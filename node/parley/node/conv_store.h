// Replicated conversations on a node's disk (spec/ordering.md, storage.md schema 6): each
// conversation's applied events in application order with their origin signatures, and the
// Replica rebuilt from them on first use. Events are stored in the caller's transaction, so an
// event is applied, stored and acknowledged together; buffered (not yet ready) events live only
// in memory and come back through catch-up after a restart. The node's epoch (node_meta
// "epoch", raised by a restore from backup) makes the actor of the events it creates.
// Runs on the core thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "parley/conv/replica.h"
#include "parley/result.h"

namespace parley::store {
class Database;
}

namespace parley::node {

struct ConvSummary {
  std::string conv;
  std::size_t events = 0, buffered = 0, members = 0;
  std::vector<std::string> nodes;
  conv::Clock clock;
};

class ConvStore {
 public:
  ConvStore(store::Database& db, std::string node_name);

  // The node's epoch (0 until a restore raised it).
  Result<std::uint64_t> epoch();
  // The replica of `conv`, loaded on first use; nullptr when this node holds no event of it.
  Result<conv::Replica*> find(const std::string& conv);
  // The replica of `conv`, empty when new.
  Result<conv::Replica*> open(const std::string& conv);
  // Stores what `conv`'s replica applied since the last call, with the signatures it has
  // (by event id); inside the caller's transaction.
  Status persist(const std::string& conv, const std::map<std::string, std::string>& signatures);
  // The signature stored with an event.
  Result<std::string> signature(const std::string& conv, const std::string& event_id);
  // Forgets the in-memory replicas (after a failed transaction, say): they reload from disk.
  void drop_cache() {
    replicas_.clear();
    stored_.clear();
  }
  Result<std::vector<ConvSummary>> list();

 private:
  Result<conv::Replica*> load(const std::string& conv, bool create);
  store::Database& db_;
  std::string node_;
  std::map<std::string, std::unique_ptr<conv::Replica>> replicas_;
  std::map<std::string, std::size_t> stored_;  // log entries already on disk, per conversation
};

}  // namespace parley::node
