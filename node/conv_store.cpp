#include "parley/node/conv_store.h"

#include <set>

#include "parley/store/database.h"

namespace parley::node {

ConvStore::ConvStore(store::Database& db, std::string node_name)
    : db_(db), node_(std::move(node_name)) {}

Result<std::uint64_t> ConvStore::epoch() {
  if (epoch_) return *epoch_;
  PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("SELECT value FROM node_meta WHERE key = 'epoch'"));
  PARLEY_ASSIGN_OR_RETURN(row, st.step());
  epoch_ = row ? std::stoull(st.column_text(0)) : std::uint64_t{0};
  return *epoch_;
}

Result<conv::Replica*> ConvStore::load(const std::string& conv, bool create) {
  if (auto it = replicas_.find(conv); it != replicas_.end()) return it->second.get();
  PARLEY_ASSIGN_OR_RETURN(e, epoch());
  auto replica = std::make_unique<conv::Replica>(conv, node_, e);
  std::size_t n = 0;
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("SELECT bytes FROM conv_events WHERE conv_id = ? ORDER BY pos"));
    st.bind(1, conv);
    for (;;) {
      PARLEY_ASSIGN_OR_RETURN(row, st.step());
      if (!row) break;
      PARLEY_ASSIGN_OR_RETURN(event, conv::Event::decode(st.column_text(0)));
      if (replica->receive(event, true) != conv::Replica::Outcome::kApplied) {
        return make_error("corrupt", "stored event " + std::to_string(n) + " of " + conv +
                                         " does not apply in order");
      }
      ++n;
    }
  }
  auto& sigs = sigs_[conv];
  std::size_t pending = 0;
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("SELECT bytes, sig FROM conv_pending WHERE conv_id = ? ORDER BY rowid"));
    st.bind(1, conv);
    for (;;) {
      PARLEY_ASSIGN_OR_RETURN(row, st.step());
      if (!row) break;
      // A waiting event stored before the clock rules (ordering.md section 2) may not decode
      // any more: it is left out, and the rest of the conversation loads.
      auto event = conv::Event::decode(st.column_text(0));
      if (!event.ok()) continue;
      const std::string id = event->id();
      const auto outcome = replica->receive(*event);
      if (outcome == conv::Replica::Outcome::kBuffered ||
          outcome == conv::Replica::Outcome::kApplied) {
        sigs[id] = st.column_text(1);
        ++pending;
      }
    }
  }
  // Waiting events refused as they became ready here (stored before the admission rules).
  for (auto& r : replica->take_refused()) {
    sigs.erase(r.first.id());
    --pending;
    // Best effort: loading is also a read (a full disk must not fail it); a row left behind is
    // refused again at the next load.
    (void)drop_pending(conv, r.first.id());
    refused_[conv].push_back(std::move(r));
  }
  if (n == 0 && pending == 0 && !create) {
    sigs_.erase(conv);
    return static_cast<conv::Replica*>(nullptr);
  }
  stored_[conv] = n;
  auto* out = replica.get();
  replicas_[conv] = std::move(replica);
  return out;
}

Result<conv::Replica*> ConvStore::find(const std::string& conv) { return load(conv, false); }
Result<conv::Replica*> ConvStore::open(const std::string& conv) { return load(conv, true); }

Result<conv::SignedEvent> ConvStore::create(const std::string& conv, conv::Kind kind,
                                            const std::string& author, const std::string& target,
                                            const std::string& role, const std::string& body,
                                            std::int64_t wall_ms, const crypto::SigningKey& key) {
  const auto it = replicas_.find(conv);
  if (it == replicas_.end()) return make_error("internal", "create in an unopened conversation");
  PARLEY_ASSIGN_OR_RETURN(event, it->second->create(kind, author, target, role, body, wall_ms));
  auto signed_event = conv::sign_event(event, key);
  sigs_[conv][event.id()] = signed_event.signature;
  return signed_event;
}

Result<conv::Replica::Outcome> ConvStore::receive(const std::string& conv,
                                                  const conv::SignedEvent& se,
                                                  const std::string& from) {
  const auto it = replicas_.find(conv);
  if (it == replicas_.end()) return make_error("internal", "receive in an unopened conversation");
  const std::string id = se.event.id();
  auto& sigs = sigs_[conv];
  const bool had = sigs.count(id) > 0;
  sigs.emplace(id, se.signature);
  const auto outcome = it->second->receive(se.event);
  if (outcome == conv::Replica::Outcome::kEquivocation) {
    // Evidence against the origin: a second event it signed for an (actor, seq) already taken.
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("INSERT OR IGNORE INTO conv_equivocations(conv_id, actor, seq, event_id, "
                        "bytes, sig, from_node, at_ms) VALUES(?, ?, ?, ?, ?, ?, ?, "
                        "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))"));
    PARLEY_TRY(st.bind(1, conv)
                   .bind(2, se.event.actor())
                   .bind(3, static_cast<std::int64_t>(se.event.seq))
                   .bind(4, id)
                   .bind_blob(5, se.event.encode())
                   .bind_blob(6, se.signature)
                   .bind(7, from)
                   .run());
  }
  for (auto& r : it->second->take_refused()) {
    sigs.erase(r.first.id());
    PARLEY_TRY(drop_pending(conv, r.first.id()));
    refused_[conv].push_back(std::move(r));
  }
  if (outcome == conv::Replica::Outcome::kBuffered) {
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("INSERT OR IGNORE INTO conv_pending(conv_id, event_id, bytes, sig) "
                        "VALUES(?, ?, ?, ?)"));
    PARLEY_TRY(st.bind(1, conv)
                   .bind(2, id)
                   .bind_blob(3, se.event.encode())
                   .bind_blob(4, se.signature)
                   .run());
  } else if (outcome != conv::Replica::Outcome::kApplied && !had) {
    sigs.erase(id);
  }
  return outcome;
}

Status ConvStore::drop_pending(const std::string& conv, const std::string& id) {
  PARLEY_ASSIGN_OR_RETURN(
      st, db_.prepare("DELETE FROM conv_pending WHERE conv_id = ? AND event_id = ?"));
  return st.bind(1, conv).bind(2, id).run();
}

std::vector<std::pair<conv::Event, std::string>> ConvStore::take_refused(const std::string& conv) {
  auto it = refused_.find(conv);
  if (it == refused_.end()) return {};
  auto out = std::move(it->second);
  refused_.erase(it);
  return out;
}

Result<std::pair<std::size_t, std::size_t>> ConvStore::persist(const std::string& conv) {
  const auto it = replicas_.find(conv);
  if (it == replicas_.end()) return make_error("internal", "persist of an unopened conversation");
  const auto& log = it->second->log();
  std::size_t& done = stored_[conv];
  const std::size_t first = done;
  auto& sigs = sigs_[conv];
  for (; done < log.size(); ++done) {
    const conv::Event& e = log[done];
    const std::string id = e.id();
    const auto sig = sigs.find(id);
    if (sig == sigs.end()) return make_error("internal", "no signature for event " + id);
    {
      PARLEY_ASSIGN_OR_RETURN(
          st, db_.prepare("INSERT INTO conv_events(conv_id, pos, actor, seq, event_id, bytes, "
                          "sig) VALUES(?, ?, ?, ?, ?, ?, ?)"));
      PARLEY_TRY(st.bind(1, conv)
                     .bind(2, static_cast<std::int64_t>(done))
                     .bind(3, e.actor())
                     .bind(4, static_cast<std::int64_t>(e.seq))
                     .bind(5, id)
                     .bind_blob(6, e.encode())
                     .bind_blob(7, sig->second)
                     .run());
    }
    PARLEY_TRY(drop_pending(conv, id));
    sigs.erase(sig);
  }
  return std::pair{first, done};
}

Result<conv::SignedEvent> ConvStore::stored(const std::string& conv, const conv::Event& event) {
  PARLEY_ASSIGN_OR_RETURN(
      st, db_.prepare("SELECT sig FROM conv_events WHERE conv_id = ? AND actor = ? AND seq = ?"));
  st.bind(1, conv).bind(2, event.actor()).bind(3, static_cast<std::int64_t>(event.seq));
  PARLEY_ASSIGN_OR_RETURN(row, st.step());
  if (!row)
    return make_error("not_found", "event " + event.actor() + ":" + std::to_string(event.seq) +
                                       " of " + conv + " is not stored");
  return conv::SignedEvent{event, st.column_text(0)};
}

std::vector<std::string> ConvStore::waiting() const {
  std::vector<std::string> out;
  for (const auto& [id, r] : replicas_) {
    if (r->buffered() > 0) out.push_back(id);
  }
  return out;
}

Result<std::optional<ConvSummary>> ConvStore::summary(const std::string& conv) {
  PARLEY_ASSIGN_OR_RETURN(r, find(conv));
  if (!r) return std::optional<ConvSummary>();
  PARLEY_ASSIGN_OR_RETURN(st,
                          db_.prepare("SELECT count(*) FROM conv_equivocations WHERE conv_id = ?"));
  st.bind(1, conv);
  PARLEY_TRY(st.step().status());
  ConvSummary s{
      conv, r->log().size(), r->buffered(), static_cast<std::size_t>(st.column_int64(0)), {},
      {},   r->clock()};
  const auto members = r->members();
  for (const auto& [who, m] : members) s.members[who] = m.role;
  const auto nodes = conv::nodes_of(members);
  s.nodes.assign(nodes.begin(), nodes.end());
  return std::optional<ConvSummary>(std::move(s));
}

Result<std::vector<ConvSummary>> ConvStore::list() {
  PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("SELECT conv_id FROM conv_events UNION SELECT conv_id "
                                          "FROM conv_pending ORDER BY 1"));
  std::vector<std::string> ids;
  for (;;) {
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) break;
    ids.push_back(st.column_text(0));
  }
  std::vector<ConvSummary> out;
  for (const auto& id : ids) {
    PARLEY_ASSIGN_OR_RETURN(s, summary(id));
    if (s) out.push_back(std::move(*s));
  }
  return out;
}

}  // namespace parley::node
