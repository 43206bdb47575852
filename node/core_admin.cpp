// Administration: user lifecycle and node statistics (the admin API calls these).
#include "core_internal.h"
#include "parley/address.h"

namespace parley::node {

Result<UserInfo> Core::add_user(const std::string& name, const std::string& password_hash,
                                const std::string& display_name) {
  PARLEY_TRY(wire::validate_local_part(name));
  PARLEY_TRY(check_display_name(display_name));
  PARLEY_TRY(check_not_retired(name));
  const std::int64_t now = clock_.now_ms();
  PARLEY_ASSIGN_OR_RETURN(
      st, db_.prepare("INSERT INTO users(name, password_hash, created_ms, display_name) VALUES(?, "
                      "?, ?, ?)"));
  auto s = st.bind(1, name).bind(2, password_hash).bind(3, now).bind(4, display_name).run();
  if (!s.ok()) {
    if (s.error().code == "conflict") {
      return make_error("conflict", "user " + name + "@" + config_.name + " already exists");
    }
    return s.take_error();
  }
  UserInfo u;
  u.name = name;
  u.address = name + "@" + config_.name;
  u.created_ms = now;
  return u;
}

Result<std::vector<UserInfo>> Core::list_users() {
  PARLEY_ASSIGN_OR_RETURN(
      st, db_.prepare("SELECT u.id, u.name, u.suspended, u.created_ms, (SELECT count(*) FROM "
                      "devices d WHERE d.user_id = u.id AND d.token_hash IS NOT NULL), "
                      "u.deactivated_ms FROM users u ORDER BY u.name"));
  std::vector<UserInfo> out;
  for (;;) {
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) break;
    UserInfo u;
    const std::int64_t id = st.column_int64(0);
    u.name = st.column_text(1);
    u.address = u.name + "@" + config_.name;
    u.suspended = st.column_int64(2) != 0;
    u.created_ms = st.column_int64(3);
    u.devices = st.column_int64(4);
    u.deactivated = st.column_int64(5) != 0;
    const auto it = by_user_.find(id);
    u.connections = it == by_user_.end() ? 0 : static_cast<std::int64_t>(it->second.size());
    out.push_back(std::move(u));
  }
  return out;
}

Status Core::set_suspended(const std::string& name, bool suspended) {
  PARLEY_ASSIGN_OR_RETURN(user, find_user(name));
  if (!user) return make_error("not_found", "no user " + name + "@" + config_.name);
  PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("UPDATE users SET suspended = ? WHERE id = ?"));
  PARLEY_TRY(st.bind(1, std::int64_t{suspended ? 1 : 0}).bind(2, user->id).run());
  if (suspended) close_user(user->id, "suspended", "the account was suspended by an admin");
  return ok_status();
}

Status Core::delete_user(const std::string& name) {
  PARLEY_ASSIGN_OR_RETURN(user, find_user(name));
  if (!user) return make_error("not_found", "no user " + name + "@" + config_.name);
  const std::string address = name + "@" + config_.name;
  PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(db_));
  PARLEY_TRY(remove_user_rows(user->id, address));
  PARLEY_TRY(tx.commit());
  close_user(user->id, "logged_out", "the account was deleted");
  send_buckets_.forget(user->id);
  to_device_buckets_.forget(user->id);
  limit_overrides_.erase(user->id);
  return ok_status();
}

Status Core::remove_user_rows(std::int64_t user_id, const std::string& address) {
  // Devices, stream, relations and conversation views go with the user (ON DELETE CASCADE).
  // Others' relations to the user go too; messages stay in the other member's history.
  {
    PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("DELETE FROM relations WHERE other = ?"));
    PARLEY_TRY(st.bind(1, address).run());
  }
  {
    PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("DELETE FROM users WHERE id = ?"));
    PARLEY_TRY(st.bind(1, user_id).run());
  }
  {
    // Conversations nobody on this node can see any more are removed with their messages.
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("DELETE FROM conversations WHERE NOT EXISTS (SELECT 1 FROM conv_members "
                        "m WHERE m.conv_id = conversations.id)"));
    PARLEY_TRY(st.run());
  }
  return ok_status();
}

Status Core::set_password_hash(const std::string& name, const std::string& password_hash) {
  PARLEY_ASSIGN_OR_RETURN(user, find_user(name));
  if (!user) return make_error("not_found", "no user " + name + "@" + config_.name);
  PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(db_));
  {
    PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("UPDATE users SET password_hash = ? WHERE id = ?"));
    PARLEY_TRY(st.bind(1, password_hash).bind(2, user->id).run());
  }
  {
    // Every session of the user ends: whoever knew the old password must log in again.
    PARLEY_ASSIGN_OR_RETURN(st,
                            db_.prepare("UPDATE devices SET token_hash = NULL WHERE user_id = ?"));
    PARLEY_TRY(st.bind(1, user->id).run());
  }
  PARLEY_TRY(tx.commit());
  close_user(user->id, "logged_out", "the password was reset by an admin");
  return ok_status();
}

Result<CoreStats> Core::stats() {
  CoreStats s;
  PARLEY_ASSIGN_OR_RETURN(
      st, db_.prepare(
              "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM devices WHERE "
              "token_hash IS NOT NULL), (SELECT count(*) FROM messages), (SELECT count(*) FROM "
              "devices d JOIN stream s ON s.user_id = d.user_id AND s.seq > d.cursor WHERE "
              "d.token_hash IS NOT NULL), (SELECT count(*) FROM fed_outbox), "
              "(SELECT coalesce(min(created_ms), 0) FROM fed_outbox), (SELECT count(*) FROM peers "
              "WHERE state = 'allowed'), (SELECT count(*) FROM peers WHERE failures > 0)"));
  PARLEY_ASSIGN_OR_RETURN(row, st.step());
  if (row) {
    s.users = st.column_int64(0);
    s.devices = st.column_int64(1);
    s.messages = st.column_int64(2);
    s.undelivered_events = st.column_int64(3);
    s.federation_queued = st.column_int64(4);
    s.federation_oldest_queued_ms = st.column_int64(5);
    s.federation_peers = st.column_int64(6);
    s.federation_peers_failing = st.column_int64(7);
  }
  s.connections = static_cast<std::int64_t>(conns_.size());
  for (const auto& [user, set] : by_user_) s.authenticated += static_cast<std::int64_t>(set.size());
  return s;
}

}  // namespace parley::node
