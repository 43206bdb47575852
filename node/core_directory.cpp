// The directory and the end-to-end key directory (spec/client-protocol.md section 11,
// spec/federation.md section 5): whether a user exists and their display name, each device's
// published key material, and one-time prekeys handed out exactly once. The node stores the key
// material as opaque bytes: clients sign and verify it (DESIGN.md, keys and trust).
#include "core_internal.h"
#include "parley/address.h"
#include "parley/federation/query.h"

namespace parley::node {

namespace {

constexpr std::size_t kMaxIdentity = 64;
constexpr std::size_t kMaxDeviceList = 16 * 1024;
constexpr std::size_t kMaxCert = 1024;
constexpr std::size_t kMaxSignedPrekey = 1024;
constexpr std::size_t kMaxOneTimeKey = 256;
constexpr std::size_t kMaxOneTimePerPublish = 200;
constexpr std::int64_t kMaxOneTimeStored = 1000;
constexpr std::size_t kMaxDisplayName = 128;
// What another node's directory limit tells us to wait (its fixed Retry-After).
constexpr std::int64_t kRemoteDirectoryRetryMs = 60'000;

bool is_directory_kind(const std::string& kind) {
  return kind == "lookup" || kind == "keys_query" || kind == "keys_claim";
}

}  // namespace

Status Core::check_display_name(const std::string& name) {
  if (name.size() > kMaxDisplayName) {
    return make_error("bad_request", "display names are at most 128 bytes");
  }
  for (const unsigned char ch : name) {
    if (ch < 0x20 || ch == 0x7f) {
      return make_error("bad_request", "display names must not contain control characters");
    }
  }
  return ok_status();
}

Status Core::do_profile(Conn& c, wire::View req, wire::MapWriter& out) {
  PARLEY_ASSIGN_OR_RETURN(name, req.str("display_name", kMaxDisplayName));
  PARLEY_TRY(check_display_name(name));
  PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("UPDATE users SET display_name = ? WHERE id = ?"));
  PARLEY_TRY(st.bind(1, name).bind(2, c.user_id).run());
  out.add("display_name", name);
  return ok_status();
}

// A message from one of the user's devices to another of their devices (end-to-end key material
// such as the identity key handed to a newly approved device). It goes to the user's stream as a
// `td` event naming the device; other devices ignore it.
Status Core::do_to_device(Conn& c, wire::View req, wire::MapWriter& out) {
  PARLEY_ASSIGN_OR_RETURN(device, req.uint("device"));
  PARLEY_ASSIGN_OR_RETURN(td_id, req.str("td_id", 64));
  PARLEY_ASSIGN_OR_RETURN(body, req.bin("body", config_.max_body_bytes));
  // Every device of the user receives it (its stream): a rate per user bounds that fan-out.
  if (const std::int64_t wait = to_device_buckets_.take(
          c.user_id, TokenBuckets::Limit{config_.to_device_per_minute, config_.to_device_burst},
          clock_.now_ms());
      wait > 0) {
    retry_after_ms_ = wait;
    return make_error("rate_limited",
                      "to_device too fast (" + std::to_string(config_.to_device_per_minute) +
                          " per minute); retry after " + std::to_string(wait) + " ms");
  }
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("SELECT 1 FROM devices WHERE id = ? AND user_id = ? AND token_hash IS "
                        "NOT NULL"));
    st.bind(1, static_cast<std::int64_t>(device)).bind(2, c.user_id);
    PARLEY_ASSIGN_OR_RETURN(found, st.step());
    if (!found) return make_error("not_found", "no device " + std::to_string(device) + " of yours");
  }
  wire::MapWriter p;
  p.add("from_device", c.device_id)
      .add("to_device", device)
      .add("td_id", td_id)
      .add_bin("body", body);
  PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(db_));
  PARLEY_ASSIGN_OR_RETURN(seq, append_event(c.user_id, "td", "", 0, p.finish()));
  PARLEY_TRY(tx.commit());
  out.add("seq", seq);
  return ok_status();
}

Status Core::do_keys_publish(Conn& c, wire::View req, wire::MapWriter& out) {
  const std::int64_t now = clock_.now_ms();
  PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(db_));
  if (req.has("identity")) {
    PARLEY_ASSIGN_OR_RETURN(identity, req.bin("identity", kMaxIdentity));
    if (identity.empty()) return make_error("bad_request", "identity must not be empty");
    // A new identity key (all devices lost, say) starts a new device list version sequence;
    // clients of other users warn about the change (spec/crypto.md).
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("INSERT INTO user_keys(user_id, identity, updated_ms) VALUES(?1, ?2, ?3) "
                        "ON CONFLICT(user_id) DO UPDATE SET identity = excluded.identity, "
                        "updated_ms = excluded.updated_ms, device_list = CASE WHEN "
                        "user_keys.identity = excluded.identity THEN user_keys.device_list ELSE "
                        "x'' END, list_version = CASE WHEN user_keys.identity = "
                        "excluded.identity THEN user_keys.list_version ELSE 0 END"));
    PARLEY_TRY(st.bind(1, c.user_id).bind_blob(2, identity).bind(3, now).run());
  }
  if (req.has("device_list")) {
    PARLEY_ASSIGN_OR_RETURN(list, req.bin("device_list", kMaxDeviceList));
    PARLEY_ASSIGN_OR_RETURN(version, req.uint("list_version"));
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("UPDATE user_keys SET device_list = ?, list_version = ?, updated_ms = ? "
                        "WHERE user_id = ? AND list_version < ?"));
    PARLEY_TRY(st.bind_blob(1, list)
                   .bind(2, static_cast<std::int64_t>(version))
                   .bind(3, now)
                   .bind(4, c.user_id)
                   .bind(5, static_cast<std::int64_t>(version))
                   .run());
    if (db_.changes() == 0) {
      return make_error("conflict",
                        "device_list needs an identity first and a list_version above the "
                        "stored one");
    }
  }
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("INSERT INTO device_keys(device_id, user_id, updated_ms) VALUES(?, ?, ?) "
                        "ON CONFLICT(device_id) DO NOTHING"));
    PARLEY_TRY(st.bind(1, c.device_id).bind(2, c.user_id).bind(3, now).run());
  }
  for (const auto& [field, limit] :
       {std::pair{"cert", kMaxCert}, std::pair{"signed_prekey", kMaxSignedPrekey}}) {
    if (!req.has(field)) continue;
    PARLEY_ASSIGN_OR_RETURN(bytes, req.bin(field, limit));
    PARLEY_ASSIGN_OR_RETURN(st, db_.prepare(std::string("UPDATE device_keys SET ") + field +
                                            " = ?, updated_ms = ? WHERE device_id = ?"));
    PARLEY_TRY(st.bind_blob(1, bytes).bind(2, now).bind(3, c.device_id).run());
  }
  if (req.has("one_time")) {
    PARLEY_ASSIGN_OR_RETURN(keys, req.array("one_time"));
    if (keys.size() > kMaxOneTimePerPublish) {
      return make_error("payload_too_large", "at most 200 one-time prekeys per publish");
    }
    std::int64_t max_id = 0;
    {
      PARLEY_ASSIGN_OR_RETURN(
          st, db_.prepare("SELECT max_key_id FROM device_keys WHERE device_id = ?"));
      st.bind(1, c.device_id);
      PARLEY_ASSIGN_OR_RETURN(row, st.step());
      if (row) max_id = st.column_int64(0);
    }
    for (const auto& k : keys) {
      PARLEY_ASSIGN_OR_RETURN(id, k.uint("id"));
      PARLEY_ASSIGN_OR_RETURN(key, k.bin("key", kMaxOneTimeKey));
      // Ids only grow, so a key id once handed out can never be handed out again.
      if (static_cast<std::int64_t>(id) <= max_id || id > static_cast<std::uint64_t>(INT64_MAX)) {
        return make_error("conflict", "one-time prekey id " + std::to_string(id) +
                                          " is not above every id this device published before (" +
                                          std::to_string(max_id) + ")");
      }
      max_id = static_cast<std::int64_t>(id);
      PARLEY_ASSIGN_OR_RETURN(
          ins, db_.prepare("INSERT INTO one_time_prekeys(device_id, key_id, key) VALUES(?, ?, ?)"));
      PARLEY_TRY(ins.bind(1, c.device_id).bind(2, max_id).bind_blob(3, key).run());
    }
    PARLEY_ASSIGN_OR_RETURN(
        up,
        db_.prepare("UPDATE device_keys SET max_key_id = ?, updated_ms = ? WHERE device_id = ?"));
    PARLEY_TRY(up.bind(1, max_id).bind(2, now).bind(3, c.device_id).run());
  }
  std::int64_t left = 0;
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("SELECT count(*) FROM one_time_prekeys WHERE device_id = ?"));
    st.bind(1, c.device_id);
    PARLEY_TRY(st.step());
    left = st.column_int64(0);
  }
  if (left > kMaxOneTimeStored) {
    return make_error("payload_too_large", "at most 1000 unclaimed one-time prekeys per device");
  }
  PARLEY_TRY(tx.commit());
  out.add("one_time_left", left);
  return ok_status();
}

Result<std::string> Core::directory_answer(const std::string& kind, const std::string& user,
                                           const std::string& asker, wire::View req) {
  if (!is_directory_kind(kind)) return make_error("not_found", "no directory question " + kind);
  const std::int64_t now = clock_.now_ms();
  // Users are limited per address; other nodes (asker without '@') per node, more generously.
  RateLimiter& misses =
      asker.find('@') == std::string::npos ? node_directory_misses_ : directory_misses_;
  if (const auto wait = misses.blocked_for(asker, now); wait > 0) {
    return make_error("rate_limited", "too many lookups of unknown users; retry after " +
                                          std::to_string((wait + 999) / 1000) + " s");
  }
  PARLEY_ASSIGN_OR_RETURN(row, find_user(user));
  wire::MapWriter out;
  if (!row) {
    misses.record_failure(asker, now);
    if (kind == "lookup") {
      out.add("exists", false);
      return out.finish();
    }
    return make_error("not_found", "no user " + user + "@" + config_.name);
  }
  if (kind == "lookup") {
    PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("SELECT display_name FROM users WHERE id = ?"));
    st.bind(1, row->id);
    PARLEY_TRY(st.step());
    out.add("exists", true).add("display_name", st.column_text(0));
    return out.finish();
  }
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("SELECT identity, device_list, list_version FROM user_keys WHERE "
                        "user_id = ?"));
    st.bind(1, row->id);
    PARLEY_ASSIGN_OR_RETURN(found, st.step());
    if (!found) return make_error("not_found", user + "@" + config_.name + " has no keys yet");
    out.add_bin("identity", st.column_text(0))
        .add_bin("device_list", st.column_text(1))
        .add("list_version", st.column_int64(2));
  }
  std::set<std::int64_t> wanted;
  if (req.has("devices")) {
    PARLEY_ASSIGN_OR_RETURN(ids, req.array("devices"));
    if (ids.size() > 100) return make_error("bad_request", "at most 100 devices per request");
    for (const auto& v : ids) {
      PARLEY_ASSIGN_OR_RETURN(id, v.as_uint());
      wanted.insert(static_cast<std::int64_t>(id));
    }
  }
  PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(db_));
  PARLEY_ASSIGN_OR_RETURN(
      devs, db_.prepare("SELECT k.device_id, k.cert, k.signed_prekey, (SELECT count(*) FROM "
                        "one_time_prekeys o WHERE o.device_id = k.device_id) FROM device_keys k "
                        "WHERE k.user_id = ? AND k.cert != x'' ORDER BY k.device_id"));
  devs.bind(1, row->id);
  struct Dev {
    std::int64_t id, left;
    std::string cert, spk;
  };
  std::vector<Dev> list;
  for (;;) {
    PARLEY_ASSIGN_OR_RETURN(more, devs.step());
    if (!more) break;
    const std::int64_t id = devs.column_int64(0);
    if (!wanted.empty() && !wanted.count(id)) continue;
    list.push_back({id, devs.column_int64(3), devs.column_text(1), devs.column_text(2)});
  }
  wire::ArrayWriter arr;
  for (const auto& d : list) {
    wire::MapWriter m;
    m.add("device", d.id).add_bin("cert", d.cert).add_bin("signed_prekey", d.spk);
    if (kind == "keys_query") {
      m.add("one_time_left", d.left);
    } else {
      // Claim: the lowest unclaimed one-time prekey, removed in this transaction, so it is
      // handed out once; none left means the signed prekey alone (X3DH without a one-time key).
      PARLEY_ASSIGN_OR_RETURN(
          take, db_.prepare("DELETE FROM one_time_prekeys WHERE device_id = ?1 AND key_id = "
                            "(SELECT min(key_id) FROM one_time_prekeys WHERE device_id = ?1) "
                            "RETURNING key_id, key"));
      take.bind(1, d.id);
      PARLEY_ASSIGN_OR_RETURN(got, take.step());
      if (got) {
        wire::MapWriter otk;
        otk.add("id", take.column_int64(0)).add_bin("key", take.column_text(1));
        m.add("one_time", otk);
      }
      PARLEY_TRY(take.step());  // finish the statement so the delete completes
    }
    arr.push(m);
  }
  PARLEY_TRY(tx.commit());
  out.add("devices", arr);
  return out.finish();
}

Result<Core::UserRow> Core::local_user_counted(Conn& c, const std::string& address) {
  const std::int64_t now = clock_.now_ms();
  if (const auto wait = directory_misses_.blocked_for(c.address, now); wait > 0) {
    retry_after_ms_ = wait;
    return make_error("rate_limited", "too many requests naming unknown users; retry after " +
                                          std::to_string((wait + 999) / 1000) + " s");
  }
  auto row = local_user_for(address);
  if (!row.ok() && row.error().code == "not_found")
    directory_misses_.record_failure(c.address, now);
  return row;
}

void Core::start_directory(ConnId id, Conn& c, const std::string& kind, wire::View req,
                           std::uint64_t req_id) {
  auto fail = [&](const Error& e) { reply_error(c, req_id, e); };
  auto address_text = req.str("address", 320);
  if (!address_text.ok()) return fail(address_text.error());
  auto address = wire::parse_address(*address_text);
  if (!address.ok()) return fail(address.error());
  if (address->domain == config_.name) {
    auto answer = directory_answer(kind, address->local, c.address, req);
    if (!answer.ok()) {
      // Like every rate limit on this port, say when to try again: the window's end.
      if (answer.error().code == "rate_limited") {
        retry_after_ms_ = directory_misses_.blocked_for(c.address, clock_.now_ms());
      }
      return fail(answer.error());
    }
    wire::MapWriter out;
    out.add("t", "re").add("id", req_id).add("ok", true).merge_map(*answer);
    send_frame(c, out.finish());
    return;
  }
  if (!remote_) return fail(make_error("unavailable", "this node does not federate"));
  if (auto allowed = check_federates_with(address->str()); !allowed.ok()) {
    return fail(allowed.error());
  }
  federation::DirectoryQuery q{address->local, c.address, {}};
  if (req.has("devices")) {
    auto ids = req.array("devices");
    if (!ids.ok()) return fail(ids.error());
    if (ids->size() > 100) return fail(make_error("bad_request", "at most 100 devices"));
    for (const auto& v : *ids) {
      auto n = v.as_uint();
      if (!n.ok()) return fail(n.error());
      q.devices.push_back(*n);
    }
  }
  remote_->query(address->domain, kind, q.encode(), [this, id, req_id](Result<std::string> answer) {
    const auto it = conns_.find(id);
    if (it == conns_.end() || it->second->closed) return;
    Conn& conn = *it->second;
    if (!answer.ok()) {
      // The other node's limit answers Retry-After: 60 (spec/federation.md section 5).
      if (answer.error().code == "rate_limited") retry_after_ms_ = kRemoteDirectoryRetryMs;
      return reply_error(conn, req_id, answer.error());
    }
    wire::MapWriter out;
    out.add("t", "re").add("id", req_id).add("ok", true);
    if (!out.merge_map(*answer)) {
      return reply_error(conn, req_id,
                         make_error("bad_gateway",
                                    "the other node answered "
                                    "something that is not a map"));
    }
    send_frame(conn, out.finish());
  });
}

}  // namespace parley::node
