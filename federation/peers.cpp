#include "parley/federation/peers.h"

#include "parley/address.h"

namespace parley::federation {

namespace {

constexpr const char* kSelect =
    "SELECT p.name, p.url, p.public_key, p.state, p.added_ms, p.last_success_ms, p.last_error, "
    "p.failures, p.next_attempt_ms, (SELECT count(*) FROM fed_outbox o WHERE o.dest = p.name), "
    "coalesce((SELECT min(created_ms) FROM fed_outbox o WHERE o.dest = p.name), 0), "
    "p.discovered_ms, p.listed FROM peers p ";

Peer row(const store::Statement& st) {
  Peer p;
  p.name = st.column_text(0);
  p.url = st.column_text(1);
  p.public_key = st.column_text(2);
  p.state = st.column_text(3);
  p.added_ms = st.column_int64(4);
  p.last_success_ms = st.column_int64(5);
  p.last_error = st.column_text(6);
  p.failures = st.column_int64(7);
  p.next_attempt_ms = st.column_int64(8);
  p.queued = st.column_int64(9);
  p.oldest_queued_ms = st.column_int64(10);
  p.discovered_ms = st.column_int64(11);
  p.listed = st.column_int64(12) != 0;
  return p;
}

}  // namespace

Status PeerStore::add(const std::string& name, const std::string& url,
                      const std::string& public_key, std::int64_t now_ms) {
  PARLEY_TRY(wire::validate_domain(name));
  if (url.rfind("https://", 0) != 0 && url.rfind("http://", 0) != 0) {
    return make_error("bad_request", "peer URL must start with https:// (or http:// for tests)");
  }
  PARLEY_ASSIGN_OR_RETURN(
      st, db_.prepare(
              "INSERT INTO peers(name, url, public_key, added_ms, listed) VALUES(?, ?, ?, ?, 1) "
              "ON CONFLICT(name) DO UPDATE SET url = excluded.url, discovered_ms = 0, listed = 1, "
              "public_key = "
              "CASE WHEN excluded.public_key = '' THEN peers.public_key "
              "ELSE excluded.public_key END"));
  return st.bind(1, name).bind(2, url).bind_blob(3, public_key).bind(4, now_ms).run();
}

Status PeerStore::remove(const std::string& name) {
  PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("DELETE FROM peers WHERE name = ?"));
  PARLEY_TRY(st.bind(1, name).run());
  if (db_.changes() == 0) return make_error("not_found", "no peer " + name);
  return ok_status();
}

Status PeerStore::set_state(const std::string& name, const std::string& state,
                            std::int64_t now_ms) {
  PARLEY_TRY(wire::validate_domain(name));
  // Denying a peer that has no entry yet creates one, so it is refused from its first request.
  PARLEY_ASSIGN_OR_RETURN(
      st,
      db_.prepare("INSERT INTO peers(name, url, state, added_ms, listed) "
                  "VALUES(?1, '', ?2, ?3, ?2 = 'allowed') "
                  "ON CONFLICT(name) DO UPDATE SET state = excluded.state, "
                  "listed = CASE WHEN excluded.state = 'allowed' THEN 1 ELSE peers.listed END"));
  return st.bind(1, name).bind(2, state).bind(3, now_ms).run();
}

Status PeerStore::pin_key(const std::string& name, const std::string& public_key) {
  PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("UPDATE peers SET public_key = ? WHERE name = ?"));
  return st.bind_blob(1, public_key).bind(2, name).run();
}

Result<std::optional<Peer>> PeerStore::get(const std::string& name) {
  PARLEY_ASSIGN_OR_RETURN(st, db_.prepare(std::string(kSelect) + "WHERE p.name = ?"));
  st.bind(1, name);
  PARLEY_ASSIGN_OR_RETURN(found, st.step());
  if (!found) return std::optional<Peer>();
  return std::optional<Peer>(row(st));
}

Result<std::vector<Peer>> PeerStore::list() {
  PARLEY_ASSIGN_OR_RETURN(st, db_.prepare(std::string(kSelect) + "ORDER BY p.name"));
  std::vector<Peer> out;
  for (;;) {
    PARLEY_ASSIGN_OR_RETURN(found, st.step());
    if (!found) break;
    out.push_back(row(st));
  }
  return out;
}

}  // namespace parley::federation
