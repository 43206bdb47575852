#include "parley/node/conv_store.h"

#include "parley/store/database.h"

namespace parley::node {

ConvStore::ConvStore(store::Database& db, std::string node_name)
    : db_(db), node_(std::move(node_name)) {}

Result<std::uint64_t> ConvStore::epoch() {
  PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("SELECT value FROM node_meta WHERE key = 'epoch'"));
  PARLEY_ASSIGN_OR_RETURN(row, st.step());
  return row ? std::stoull(st.column_text(0)) : std::uint64_t{0};
}

Result<conv::Replica*> ConvStore::load(const std::string& conv, bool create) {
  if (auto it = replicas_.find(conv); it != replicas_.end()) return it->second.get();
  PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("SELECT bytes FROM conv_events WHERE conv_id = ? ORDER "
                                          "BY pos"));
  st.bind(1, conv);
  PARLEY_ASSIGN_OR_RETURN(e, epoch());
  auto replica = std::make_unique<conv::Replica>(conv, node_, e);
  std::size_t n = 0;
  for (;;) {
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) break;
    PARLEY_ASSIGN_OR_RETURN(event, conv::Event::decode(st.column_text(0)));
    if (replica->receive(event) != conv::Replica::Outcome::kApplied) {
      return make_error("corrupt", "stored event " + std::to_string(n) + " of " + conv +
                                       " does not apply in order");
    }
    ++n;
  }
  if (n == 0 && !create) return static_cast<conv::Replica*>(nullptr);
  stored_[conv] = n;
  auto* out = replica.get();
  replicas_[conv] = std::move(replica);
  return out;
}

Result<conv::Replica*> ConvStore::find(const std::string& conv) { return load(conv, false); }
Result<conv::Replica*> ConvStore::open(const std::string& conv) { return load(conv, true); }

Status ConvStore::persist(const std::string& conv,
                          const std::map<std::string, std::string>& signatures) {
  const auto it = replicas_.find(conv);
  if (it == replicas_.end()) return make_error("internal", "persist of an unopened conversation");
  const auto& log = it->second->log();
  std::size_t& done = stored_[conv];
  for (; done < log.size(); ++done) {
    const conv::Event& e = log[done];
    const std::string id = e.id();
    const auto sig = signatures.find(id);
    if (sig == signatures.end()) return make_error("internal", "no signature for event " + id);
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("INSERT INTO conv_events(conv_id, pos, actor, seq, event_id, bytes, sig) "
                        "VALUES(?, ?, ?, ?, ?, ?, ?)"));
    PARLEY_TRY(st.bind(1, conv)
                   .bind(2, static_cast<std::int64_t>(done))
                   .bind(3, e.actor())
                   .bind(4, static_cast<std::int64_t>(e.seq))
                   .bind(5, id)
                   .bind_blob(6, e.encode())
                   .bind_blob(7, sig->second)
                   .run());
  }
  return ok_status();
}

Result<std::string> ConvStore::signature(const std::string& conv, const std::string& event_id) {
  PARLEY_ASSIGN_OR_RETURN(
      st, db_.prepare("SELECT sig FROM conv_events WHERE conv_id = ? AND event_id = ?"));
  st.bind(1, conv).bind(2, event_id);
  PARLEY_ASSIGN_OR_RETURN(row, st.step());
  if (!row) return make_error("not_found", "no event " + event_id + " in " + conv);
  return st.column_text(0);
}

Result<std::vector<ConvSummary>> ConvStore::list() {
  PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("SELECT DISTINCT conv_id FROM conv_events ORDER BY "
                                          "conv_id"));
  std::vector<std::string> ids;
  for (;;) {
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) break;
    ids.push_back(st.column_text(0));
  }
  std::vector<ConvSummary> out;
  for (const auto& id : ids) {
    PARLEY_ASSIGN_OR_RETURN(r, find(id));
    if (!r) continue;
    const auto state = r->state();
    ConvSummary s{id, r->log().size(), r->buffered(), state.members.size(), {}, r->clock()};
    for (const auto& n : state.nodes()) s.nodes.push_back(n);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace parley::node
