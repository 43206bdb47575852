// Replicated conversations on a node's disk (spec/ordering.md, storage.md schemas 6-7): each
// conversation's applied events in application order with their origin signatures, events still
// waiting for their causal past, and the Replica rebuilt from both on first use. Everything is
// written in the caller's transaction, so an event is applied (or buffered), stored and
// acknowledged together: an acknowledged event is never lost by a crash. The node's epoch
// (node_meta "epoch", raised by a restore from backup) makes the actor of the events it creates.
// Runs on the core thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "parley/conv/replica.h"
#include "parley/result.h"

namespace parley::store {
class Database;
}

namespace parley::node {

struct ConvSummary {
  std::string conv;
  std::size_t events = 0, buffered = 0, equivocations = 0;
  std::map<std::string, std::string> members;  // address -> role
  std::vector<std::string> nodes;
  conv::Clock clock;
};

class ConvStore {
 public:
  ConvStore(store::Database& db, std::string node_name);

  // The node's epoch (0 until a restore raised it); read once, until drop_cache().
  Result<std::uint64_t> epoch();
  // The replica of `conv`, loaded on first use; nullptr when this node holds no event of it.
  Result<conv::Replica*> find(const std::string& conv);
  // The replica of `conv`, empty when new.
  Result<conv::Replica*> open(const std::string& conv);

  // A new event of a local user, checked by the (open) replica and signed with `key`.
  Result<conv::SignedEvent> create(const std::string& conv, conv::Kind kind,
                                   const std::string& author, const std::string& target,
                                   const std::string& role, const std::string& body,
                                   std::int64_t wall_ms, const crypto::SigningKey& key);
  // An event from elsewhere (node `from` delivered it) whose signature the caller checked, given
  // to the (open) replica. A buffered event is stored in conv_pending so it survives a restart;
  // an equivocating one in conv_equivocations, as evidence.
  Result<conv::Replica::Outcome> receive(const std::string& conv, const conv::SignedEvent& event,
                                         const std::string& from = "");
  // Stores what `conv`'s replica applied since the last call (and drops those events from
  // conv_pending). Returns the log positions written, [first, last).
  Result<std::pair<std::size_t, std::size_t>> persist(const std::string& conv);

  // Events of `conv` refused when their causal past arrived (they had waited in conv_pending,
  // which no longer holds them once persist() ran), with the reason; each is returned once.
  std::vector<std::pair<conv::Event, std::string>> take_refused(const std::string& conv);

  // The applied event at (actor, seq) with its signature, as stored.
  Result<conv::SignedEvent> stored(const std::string& conv, const conv::Event& event);
  // Forgets the in-memory replicas (after a failed transaction, say): they reload from disk.
  void drop_cache() {
    replicas_.clear();
    stored_.clear();
    sigs_.clear();
    refused_.clear();
    epoch_.reset();
  }
  // Conversations loaded here with events waiting for their causal past.
  std::vector<std::string> waiting() const;
  Result<std::vector<ConvSummary>> list();
  // One conversation's summary; nullopt when this node holds no event of it.
  Result<std::optional<ConvSummary>> summary(const std::string& conv);

 private:
  Result<conv::Replica*> load(const std::string& conv, bool create);
  Status drop_pending(const std::string& conv, const std::string& event_id);
  store::Database& db_;
  std::string node_;
  std::map<std::string, std::unique_ptr<conv::Replica>> replicas_;
  std::map<std::string, std::size_t> stored_;  // log entries already on disk, per conversation
  // Signatures of events not yet in conv_events, per conversation and event id.
  std::map<std::string, std::map<std::string, std::string>> sigs_;
  std::optional<std::uint64_t> epoch_;
  std::map<std::string, std::vector<std::pair<conv::Event, std::string>>> refused_;
};

}  // namespace parley::node
