// People: sessions and kicks, deactivation, erasure and retired names, send rate limits
// (spec/admin-api.md "People"; spec/client-protocol.md section 4, rate_limited).
#include <spdlog/spdlog.h>

#include <algorithm>

#include "core_internal.h"
#include "parley/address.h"

namespace parley::node {

namespace {

std::string no_user(const std::string& name, const std::string& node) {
  return "no user " + name + "@" + node;
}

}  // namespace

Result<std::vector<SessionInfo>> Core::list_sessions(const std::string& name, bool all) {
  PARLEY_ASSIGN_OR_RETURN(user, find_user(name));
  if (!user) return make_error("not_found", no_user(name, config_.name));
  PARLEY_ASSIGN_OR_RETURN(
      st, db_.prepare("SELECT id, label, created_ms, last_seen_ms, last_address, token_hash IS NOT "
                      "NULL FROM devices WHERE user_id = ? ORDER BY id DESC"));
  st.bind(1, user->id);
  std::vector<SessionInfo> out;
  std::unordered_map<std::int64_t, std::size_t> at;  // device id -> index in out
  for (;;) {
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) break;
    SessionInfo s;
    s.device = st.column_int64(0);
    s.label = st.column_text(1);
    s.created_ms = st.column_int64(2);
    s.last_seen_ms = st.column_int64(3);
    s.last_address = st.column_text(4);
    s.signed_in = st.column_int64(5) != 0;
    at[s.device] = out.size();
    out.push_back(std::move(s));
  }
  // Live connections: their source, and the time of their last frame as "last seen".
  if (const auto it = by_user_.find(user->id); it != by_user_.end()) {
    for (ConnId id : it->second) {
      const auto c = conns_.find(id);
      if (c == conns_.end() || c->second->closed) continue;
      const auto d = at.find(c->second->device_id);
      if (d == at.end()) continue;
      SessionInfo& s = out[d->second];
      s.connections.push_back(c->second->source);
      s.last_seen_ms = std::max(s.last_seen_ms, c->second->last_frame_ms);
    }
  }
  if (!all) {
    out.erase(
        std::remove_if(out.begin(), out.end(),
                       [](const SessionInfo& s) { return !s.signed_in && s.connections.empty(); }),
        out.end());
  }
  return out;
}

std::int64_t Core::close_device(std::int64_t user_id, std::int64_t device_id,
                                const std::string& code, const std::string& message) {
  const auto it = by_user_.find(user_id);
  if (it == by_user_.end()) return 0;
  std::int64_t closed = 0;
  for (ConnId id : std::set<ConnId>(it->second)) {
    const auto c = conns_.find(id);
    if (c == conns_.end() || c->second->device_id != device_id) continue;
    if (!c->second->closed) {
      out_close(c->second->outlet, code, message);
      c->second->closed = true;
      ++closed;
    }
    on_disconnect(id);
  }
  return closed;
}

Result<std::pair<std::int64_t, std::int64_t>> Core::kick(const std::string& name,
                                                         std::optional<std::int64_t> device) {
  PARLEY_ASSIGN_OR_RETURN(user, find_user(name));
  if (!user) return make_error("not_found", no_user(name, config_.name));
  std::vector<std::int64_t> devices;
  {
    PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("SELECT id FROM devices WHERE user_id = ?"));
    st.bind(1, user->id);
    for (;;) {
      PARLEY_ASSIGN_OR_RETURN(row, st.step());
      if (!row) break;
      const std::int64_t id = st.column_int64(0);
      if (!device || *device == id) devices.push_back(id);
    }
  }
  if (device && devices.empty()) {
    return make_error("not_found", "device " + std::to_string(*device) + " is not one of " + name +
                                       "@" + config_.name + "'s");
  }
  std::int64_t signed_out = 0;
  {
    PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(db_));
    for (std::int64_t id : devices) {
      PARLEY_ASSIGN_OR_RETURN(
          st, db_.prepare("UPDATE devices SET token_hash = NULL WHERE id = ? AND token_hash IS "
                          "NOT NULL"));
      PARLEY_TRY(st.bind(1, id).run());
      signed_out += db_.changes();
    }
    PARLEY_TRY(tx.commit());
  }
  std::int64_t closed = 0;
  for (std::int64_t id : devices) {
    closed += close_device(user->id, id, "logged_out", "signed out by an admin");
  }
  return std::pair{signed_out, closed};
}

Status Core::set_deactivated(const std::string& name, bool deactivated) {
  PARLEY_ASSIGN_OR_RETURN(user, find_user(name));
  if (!user) return make_error("not_found", no_user(name, config_.name));
  PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(db_));
  {
    PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("UPDATE users SET deactivated_ms = ? WHERE id = ?"));
    PARLEY_TRY(st.bind(1, deactivated ? clock_.now_ms() : std::int64_t{0}).bind(2, user->id).run());
  }
  if (deactivated) {
    // No session survives: after a reactivation every device logs in again with the password.
    PARLEY_ASSIGN_OR_RETURN(st,
                            db_.prepare("UPDATE devices SET token_hash = NULL WHERE user_id = ?"));
    PARLEY_TRY(st.bind(1, user->id).run());
  }
  PARLEY_TRY(tx.commit());
  if (deactivated) close_user(user->id, "deactivated", "the account was deactivated by an admin");
  return ok_status();
}

Status Core::erase_user(const std::string& name) {
  PARLEY_ASSIGN_OR_RETURN(user, find_user(name));
  if (!user) return make_error("not_found", no_user(name, config_.name));
  const std::string address = name + "@" + config_.name;
  PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(db_));
  {
    // Every 1:1 message the user sent, also from the histories of the people they wrote to
    // (whose streams then show the message as gone).
    PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("DELETE FROM messages WHERE sender = ?"));
    PARLEY_TRY(st.bind(1, address).run());
  }
  {
    PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("DELETE FROM reports WHERE reporter = ?"));
    PARLEY_TRY(st.bind(1, address).run());
  }
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("INSERT OR REPLACE INTO retired_names(name, retired_ms) VALUES(?, ?)"));
    PARLEY_TRY(st.bind(1, name).bind(2, clock_.now_ms()).run());
  }
  PARLEY_TRY(remove_user_rows(user->id, address));
  PARLEY_TRY(tx.commit());
  close_user(user->id, "logged_out", "the account was erased");
  send_buckets_.forget(user->id);
  to_device_buckets_.forget(user->id);
  limit_overrides_.erase(user->id);
  return ok_status();
}

Status Core::check_not_retired(const std::string& name) {
  PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("SELECT 1 FROM retired_names WHERE name = ?"));
  st.bind(1, name);
  PARLEY_ASSIGN_OR_RETURN(row, st.step());
  if (row) {
    return make_error("conflict", "the name " + name +
                                      " was retired when its account was erased; `parleyd user "
                                      "unretire " +
                                      name + "` frees it");
  }
  return ok_status();
}

Status Core::unretire_name(const std::string& name) {
  PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("DELETE FROM retired_names WHERE name = ?"));
  PARLEY_TRY(st.bind(1, name).run());
  if (db_.changes() == 0) return make_error("not_found", "the name " + name + " is not retired");
  return ok_status();
}

Result<std::vector<std::pair<std::string, std::int64_t>>> Core::retired_names() {
  PARLEY_ASSIGN_OR_RETURN(st,
                          db_.prepare("SELECT name, retired_ms FROM retired_names ORDER BY name"));
  std::vector<std::pair<std::string, std::int64_t>> out;
  for (;;) {
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) break;
    out.emplace_back(st.column_text(0), st.column_int64(1));
  }
  return out;
}

SendLimit Core::effective_limit(std::int64_t user_id) {
  auto it = limit_overrides_.find(user_id);
  if (it == limit_overrides_.end()) {
    std::optional<SendLimit> found;
    auto st = db_.prepare(
        "SELECT messages_per_minute, coalesce(message_burst, 0) FROM users WHERE id = ? AND "
        "messages_per_minute IS NOT NULL");
    if (!st.ok()) return {config_.messages_per_minute, config_.message_burst, false};
    st->bind(1, user_id);
    if (auto row = st->step(); row.ok() && *row) {
      found = SendLimit{static_cast<std::uint32_t>(st->column_int64(0)),
                        static_cast<std::uint32_t>(st->column_int64(1)), true};
    } else if (!row.ok()) {
      return {config_.messages_per_minute, config_.message_burst, false};
    }
    it = limit_overrides_.emplace(user_id, found).first;
  }
  if (!it->second) return {config_.messages_per_minute, config_.message_burst, false};
  SendLimit l = *it->second;
  // Without a burst of its own an override may come at once as often as the node's burst
  // allows, but never more than one minute's worth.
  if (l.burst == 0 && l.messages_per_minute > 0)
    l.burst = std::max<std::uint32_t>(1, std::min(config_.message_burst, l.messages_per_minute));
  return l;
}

Result<SendLimit> Core::send_limit(const std::string& name) {
  PARLEY_ASSIGN_OR_RETURN(user, find_user(name));
  if (!user) return make_error("not_found", no_user(name, config_.name));
  return effective_limit(user->id);
}

Status Core::set_send_limit(const std::string& name, std::optional<SendLimit> limit) {
  PARLEY_ASSIGN_OR_RETURN(user, find_user(name));
  if (!user) return make_error("not_found", no_user(name, config_.name));
  PARLEY_ASSIGN_OR_RETURN(
      st, db_.prepare("UPDATE users SET messages_per_minute = ?, message_burst = ? WHERE id = ?"));
  if (limit) {
    st.bind(1, std::int64_t{limit->messages_per_minute});
    limit->burst ? st.bind(2, std::int64_t{limit->burst}) : st.bind_null(2);
  } else {
    st.bind_null(1).bind_null(2);
  }
  PARLEY_TRY(st.bind(3, user->id).run());
  limit_overrides_.erase(user->id);  // read again on the next send
  return ok_status();
}

Status Core::take_send_token(Conn& c) {
  const SendLimit limit = effective_limit(c.user_id);
  const std::int64_t wait = send_buckets_.take(
      c.user_id, TokenBuckets::Limit{limit.messages_per_minute, limit.burst}, clock_.now_ms());
  if (wait == 0) return ok_status();
  retry_after_ms_ = wait;
  spdlog::debug("event=rate_limited user={} retry_after_ms={}", c.address, wait);
  return make_error("rate_limited",
                    "sending too fast (" + std::to_string(limit.messages_per_minute) +
                        " messages per minute); retry after " + std::to_string(wait) + " ms");
}

void Core::remember_last_seen(const Conn& c) {
  if (c.device_id == 0 || c.last_frame_ms == 0 || storage_refusing_) return;
  auto tx = store::Transaction::begin(db_);
  if (!tx.ok()) return;
  auto st = db_.prepare(
      "UPDATE devices SET last_seen_ms = max(last_seen_ms, ?), last_address = ? WHERE id = ?");
  Status s = st.ok() ? st->bind(1, c.last_frame_ms).bind(2, c.source).bind(3, c.device_id).run()
                     : Status(st.error());
  if (s.ok()) s = tx->commit();
  if (!s.ok()) note_write_refused(s.error());  // best effort, like a login's last-seen time
}

}  // namespace parley::node
