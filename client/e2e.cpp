#include "parley/client/e2e.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include "e2e_internal.h"
#include "parley/client/envelope.h"
#include "parley/client/session.h"
#include "parley/crypto/group.h"
#include "parley/crypto/hash.h"
#include "parley/crypto/identity.h"
#include "parley/crypto/ratchet.h"
#include "parley/message.h"

namespace parley::client {

namespace {

using namespace e2e_detail;

constexpr int kOneTimeBatch = 100;
constexpr std::int64_t kSignedPrekeyLifetimeMs = 7LL * 24 * 3600 * 1000;
constexpr std::int64_t kSignedPrekeyGraceMs = 30LL * 24 * 3600 * 1000;
constexpr std::int64_t kOneTimeLow = 20;

// What a 1:1 plaintext is before padding: the message id binds the ciphertext to its message.
std::string inner(const std::string& msg_id, const std::string& text) {
  wire::MapWriter m;
  m.add("id", msg_id).add_bin("text", text);
  return m.finish();
}

}  // namespace

struct E2e::OwnList {
  crypto::SigningKey identity;
  crypto::DeviceList list;
  wire::Message query;  // the keys_query answer it came from
};

Result<std::string> E2e::self_value(const std::string& key) {
  PARLEY_ASSIGN_OR_RETURN(st, profile_.db().prepare("SELECT value FROM e2e_self WHERE key = ?"));
  st.bind(1, key);
  PARLEY_ASSIGN_OR_RETURN(row, st.step());
  return row ? st.column_text(0) : std::string();
}

Status E2e::set_self_value(const std::string& key, const std::string& value) {
  PARLEY_ASSIGN_OR_RETURN(
      st, profile_.db().prepare("INSERT INTO e2e_self(key, value) VALUES(?, ?) ON CONFLICT(key) "
                                "DO UPDATE SET value = excluded.value"));
  return st.bind(1, key).bind_blob(2, value).run();
}

namespace {

// Generates `n` one-time prekeys, stores their private halves and returns the publish list.
Result<wire::ArrayWriter> new_one_time_prekeys(store::Database& db, std::int64_t& next_id, int n) {
  wire::ArrayWriter list;
  for (int i = 0; i < n; ++i) {
    const auto kp = crypto::DhKeyPair::generate();
    PARLEY_ASSIGN_OR_RETURN(
        st, db.prepare("INSERT INTO e2e_prekeys(id, kind, private, created_ms) VALUES(?, 'otk', "
                       "?, ?)"));
    PARLEY_TRY(st.bind(1, next_id).bind_blob(2, kp.private_key()).bind(3, now_ms()).run());
    wire::MapWriter k;
    k.add("id", next_id).add_bin("key", kp.public_key());
    list.push(k);
    ++next_id;
  }
  return list;
}

}  // namespace

Status E2e::ensure_device_keys() {
  PARLEY_ASSIGN_OR_RETURN(seed, self_value("device_seed"));
  if (!seed.empty()) return ok_status();
  PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(profile_.db()));
  const auto device = crypto::SigningKey::generate();
  const auto dh = crypto::DhKeyPair::generate();
  const auto spk = crypto::DhKeyPair::generate();
  PARLEY_TRY(set_self_value("device_seed", std::string(device.seed())));
  PARLEY_TRY(set_self_value("device_dh", std::string(dh.private_key())));
  PARLEY_ASSIGN_OR_RETURN(
      st, profile_.db().prepare("INSERT INTO e2e_prekeys(id, kind, private, created_ms) VALUES(1, "
                                "'spk', ?, ?)"));
  PARLEY_TRY(st.bind_blob(1, spk.private_key()).bind(2, now_ms()).run());
  PARLEY_TRY(set_self_value("spk_id", "1"));
  PARLEY_TRY(set_self_value("next_prekey_id", "2"));
  PARLEY_TRY(set_self_value("published", "0"));
  return tx.commit();
}

Result<E2e::Me> E2e::me(const Session& s) {
  PARLEY_TRY(ensure_device_keys());
  PARLEY_ASSIGN_OR_RETURN(keys, load_keys([this](const std::string& k) { return self_value(k); }));
  PARLEY_ASSIGN_OR_RETURN(device_id_text, profile_.get("device_id"));
  if (device_id_text.empty()) return make_error("not_logged_in", "this profile is not logged in");
  return Me{std::move(keys), std::stoull(device_id_text), s.address()};
}

Result<std::string> E2e::publish(Session& s, bool new_identity) {
  PARLEY_ASSIGN_OR_RETURN(self, me(s));
  const auto& keys = self.keys;
  const std::uint64_t my_device = self.device;
  const std::string& me = self.address;

  wire::MapWriter f;
  f.add_bin("cert", crypto::encode_device_cert(keys.signing, keys.dh));
  PARLEY_ASSIGN_OR_RETURN(spk_id_text, self_value("spk_id"));
  const std::uint64_t spk_id = std::stoull(spk_id_text);
  {
    PARLEY_ASSIGN_OR_RETURN(st,
                            profile_.db().prepare("SELECT private FROM e2e_prekeys WHERE id = ?"));
    st.bind(1, static_cast<std::int64_t>(spk_id));
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) return make_error("bad_state", "the signed prekey is missing from the profile");
    PARLEY_ASSIGN_OR_RETURN(spk, crypto::DhKeyPair::from_private(st.column_text(0)));
    f.add_bin("signed_prekey", crypto::encode_signed_prekey(keys.signing, spk_id, spk));
  }
  PARLEY_ASSIGN_OR_RETURN(published, self_value("published"));
  PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(profile_.db()));
  if (published != "1") {
    PARLEY_ASSIGN_OR_RETURN(next_text, self_value("next_prekey_id"));
    std::int64_t next = std::stoll(next_text);
    PARLEY_ASSIGN_OR_RETURN(list, new_one_time_prekeys(profile_.db(), next, kOneTimeBatch));
    f.add("one_time", list);
    PARLEY_TRY(set_self_value("next_prekey_id", std::to_string(next)));
  }

  // The user's identity: made here on the first device; otherwise held only if this device is
  // the one that made it.
  std::string notice;
  wire::MapWriter q;
  q.add("address", me);
  auto mine = s.call("keys_query", q);
  PARLEY_ASSIGN_OR_RETURN(identity_seed, self_value("identity_seed"));
  if (new_identity || (!mine.ok() && mine.error().code == "not_found" && identity_seed.empty())) {
    const auto identity = crypto::SigningKey::generate();
    PARLEY_TRY(set_self_value("identity_seed", std::string(identity.seed())));
    crypto::DeviceList list{me, 1, {{my_device, keys.signing.public_key(), keys.dh.public_key()}}};
    f.add_bin("identity", identity.public_key())
        .add_bin("device_list", crypto::encode_device_list(list, identity))
        .add("list_version", std::uint64_t{1});
    PARLEY_ASSIGN_OR_RETURN(
        st, profile_.db().prepare("INSERT INTO e2e_peers(user, identity, state, first_seen_ms) "
                                  "VALUES(?, ?, 'trusted', ?) ON CONFLICT(user) DO UPDATE SET "
                                  "identity = excluded.identity, state = 'trusted'"));
    PARLEY_TRY(st.bind(1, me).bind_blob(2, identity.public_key()).bind(3, now_ms()).run());
  } else if (!mine.ok()) {
    return mine.take_error();
  } else {
    const std::string identity_key = mine->root().bin("identity", 64).value();
    bool listed = false;
    if (auto list = crypto::parse_device_list(mine->root().bin("device_list", 16384).value(),
                                              identity_key, me);
        list.ok()) {
      const auto* d = list->find(my_device);
      listed =
          d && d->dh_key == keys.dh.public_key() && d->signing_key == keys.signing.public_key();
    }
    if (!listed) {
      notice = "This device (" + std::to_string(my_device) +
               ") has keys but is not yet trusted by your other devices. On one of them run: "
               "parley devices approve " +
               std::to_string(my_device);
    }
  }
  PARLEY_TRY(s.call("keys_publish", f).status());
  PARLEY_TRY(set_self_value("published", "1"));
  PARLEY_TRY(tx.commit());
  return notice;
}

Result<std::vector<E2e::Listed>> E2e::trusted_devices(Session& s, const std::string& user,
                                                      bool require_trusted) {
  wire::MapWriter q;
  q.add("address", user);
  return devices_from_answer(user, s.call("keys_query", q), require_trusted);
}

Result<bool> E2e::has_session_with(const std::string& user) {
  PARLEY_ASSIGN_OR_RETURN(st, profile_.db().prepare("SELECT 1 FROM e2e_sessions WHERE user = ?"));
  st.bind(1, user);
  return st.step();
}

Result<std::map<std::string, Result<std::vector<E2e::Listed>>>> E2e::trusted_devices_of(
    Session& s, const std::vector<std::string>& users, bool require_trusted, int wait_ms,
    Lookup* lookup) {
  std::vector<Session::Request> requests;
  for (const auto& user : users) {
    wire::MapWriter q;
    q.add("address", user);
    const bool claim = lookup && lookup->claim.count(user);
    requests.push_back({claim ? "keys_claim" : "keys_query", std::move(q)});
  }
  PARLEY_ASSIGN_OR_RETURN(answers, s.call_all(requests, wait_ms));
  std::map<std::string, Result<std::vector<Listed>>> out;
  for (std::size_t i = 0; i < users.size(); ++i) {
    const std::string& user = users[i];
    Result<wire::Message> answer = std::move(answers[i]);
    if (!answer.ok() && answer.error().code == "timeout") {
      answer = make_error("unreachable", "the node of " + user + " did not answer in time");
    }
    if (lookup && !answer.ok() && answer.error().code == "unreachable") {
      lookup->unanswered.insert(user);
    }
    out.emplace(user, devices_from_answer(user, answer, require_trusted));
    if (lookup && answer.ok() && lookup->claim.count(user)) {
      lookup->claimed.emplace(user, std::move(answer).value());
    }
  }
  return out;
}

Result<std::vector<E2e::Listed>> E2e::devices_from_answer(const std::string& user,
                                                          const Result<wire::Message>& re,
                                                          bool require_trusted) {
  if (!re.ok() && re.error().code == "unreachable") {
    // The user's node is down: the device list we verified last time still names their devices
    // (sessions exist for those we wrote to; new ones wait for the node).
    PARLEY_ASSIGN_OR_RETURN(
        st, profile_.db().prepare("SELECT identity, device_list, state FROM e2e_peers WHERE "
                                  "user = ?"));
    st.bind(1, user);
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row || st.column_text(1).empty()) return re.error();
    if (st.column_text(2) != "trusted" && require_trusted) {
      return make_error("identity_changed", "the identity key of " + user + " changed");
    }
    PARLEY_ASSIGN_OR_RETURN(list,
                            crypto::parse_device_list(st.column_text(1), st.column_text(0), user));
    std::vector<Listed> cached;
    for (const auto& d : list.devices) cached.push_back({d.device, d.signing_key, d.dh_key});
    return cached;
  }
  if (!re.ok()) return re.error();
  PARLEY_ASSIGN_OR_RETURN(identity, re->root().bin("identity", 64));
  PARLEY_ASSIGN_OR_RETURN(list_blob, re->root().bin("device_list", 16384));
  // Trust on first use; a different key later blocks until the user accepts it.
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, profile_.db().prepare("SELECT identity, state, new_identity FROM e2e_peers WHERE "
                                  "user = ?"));
    st.bind(1, user);
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) {
      PARLEY_ASSIGN_OR_RETURN(ins,
                              profile_.db().prepare("INSERT INTO e2e_peers(user, identity, state, "
                                                    "first_seen_ms) VALUES(?, ?, 'trusted', ?)"));
      PARLEY_TRY(ins.bind(1, user).bind_blob(2, identity).bind(3, now_ms()).run());
    } else if (st.column_text(0) != identity) {
      PARLEY_ASSIGN_OR_RETURN(
          up, profile_.db().prepare("UPDATE e2e_peers SET state = 'changed', new_identity = ? "
                                    "WHERE user = ?"));
      PARLEY_TRY(up.bind_blob(1, identity).bind(2, user).run());
      if (require_trusted) {
        return make_error("identity_changed",
                          "the identity key of " + user +
                              " changed. Compare safety numbers (parley verify " + user +
                              ") and accept it with: parley trust " + user);
      }
      return std::vector<Listed>{};
    }
  }
  std::vector<Listed> out;
  if (list_blob.empty()) return out;
  PARLEY_ASSIGN_OR_RETURN(list, crypto::parse_device_list(list_blob, identity, user));
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, profile_.db().prepare("UPDATE e2e_peers SET device_list = ?, list_version = ? WHERE "
                                  "user = ? AND identity = ?"));
    PARLEY_TRY(st.bind_blob(1, list_blob)
                   .bind(2, static_cast<std::int64_t>(list.version))
                   .bind(3, user)
                   .bind_blob(4, identity)
                   .run());
  }
  PARLEY_ASSIGN_OR_RETURN(devices, re->root().array("devices"));
  for (const auto& d : devices) {
    PARLEY_ASSIGN_OR_RETURN(id, d.uint("device"));
    const auto* listed = list.find(id);
    if (!listed) continue;  // published keys the user's identity never approved: ignored
    auto cert_blob = d.bin("cert", 1024);
    if (!cert_blob.ok()) continue;
    auto cert = crypto::parse_device_cert(*cert_blob);
    if (!cert.ok() || cert->signing_key != listed->signing_key || cert->dh_key != listed->dh_key) {
      continue;  // a certificate that is not the listed device's
    }
    out.push_back({id, listed->signing_key, listed->dh_key});
  }
  return out;
}

Result<std::string> E2e::seal(Session& s, const std::string& peer, const std::string& msg_id,
                              const std::string& plaintext) {
  // A retry with the same msg_id sends the very same bytes (the node dedupes by content).
  {
    PARLEY_ASSIGN_OR_RETURN(
        st,
        profile_.db().prepare("SELECT peer, plaintext, envelope FROM e2e_outbox WHERE msg_id = ?"));
    st.bind(1, msg_id);
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (row) {
      if (st.column_text(0) != peer || st.column_text(1) != plaintext) {
        return make_error("conflict", "msg_id " + msg_id + " was used for another message");
      }
      return st.column_text(2);
    }
  }
  PARLEY_ASSIGN_OR_RETURN(self, me(s));
  const auto& keys = self.keys;
  const std::uint64_t my_device = self.device;
  const std::string& me = self.address;
  const std::string device_id_text = std::to_string(my_device);

  PARLEY_ASSIGN_OR_RETURN(own, trusted_devices(s, me, true));
  bool approved = false;
  for (const auto& d : own) approved |= d.device == my_device && d.dh_key == keys.dh.public_key();
  if (!approved) {
    return make_error("not_approved",
                      "this device is not in your signed device list yet; approve it from "
                      "another of your devices: parley devices approve " +
                          device_id_text);
  }
  PARLEY_ASSIGN_OR_RETURN(theirs, trusted_devices(s, peer, true));
  if (theirs.empty()) {
    return make_error("not_found", peer + " has no device with end-to-end keys yet");
  }
  std::vector<std::pair<std::string, Listed>> targets;
  for (const auto& d : theirs) targets.emplace_back(peer, d);
  for (const auto& d : own) {
    if (d.device != my_device) targets.emplace_back(me, d);
  }

  SealJob job;
  job.targets = std::move(targets);
  job.padded = crypto::pad_message(inner(msg_id, plaintext));
  int sealed = 0;
  std::string body;
  PARLEY_TRY(seal_for(s, keys.dh, my_device, job, [&](const Envelope& envelope) -> Status {
    for (const auto& e : envelope.entries) sealed += e.user == peer;
    if (sealed == 0) {
      return Status(make_error("not_found", "no device of " + peer + " could be reached"));
    }
    body = envelope.encode();
    PARLEY_ASSIGN_OR_RETURN(
        ob, profile_.db().prepare("INSERT INTO e2e_outbox(msg_id, peer, plaintext, envelope, "
                                  "created_ms) VALUES(?, ?, ?, ?, ?)"));
    return ob.bind(1, msg_id)
        .bind(2, peer)
        .bind_blob(3, plaintext)
        .bind_blob(4, body)
        .bind(5, now_ms())
        .run();
  }));
  return body;
}

Status E2e::seal_for(Session& s, const crypto::DhKeyPair& my_dh, std::uint64_t my_device,
                     SealJob& job, const std::function<Status(const Envelope&)>& in_transaction) {
  const auto& targets = job.targets;
  // Devices without a session: claim a prekey bundle and start one (X3DH).
  std::map<std::string, std::vector<Listed>> to_claim;
  for (const auto& [user, d] : targets) {
    PARLEY_ASSIGN_OR_RETURN(
        st, profile_.db().prepare("SELECT 1 FROM e2e_sessions WHERE user = ? AND device = ?"));
    st.bind(1, user).bind(2, static_cast<std::int64_t>(d.device));
    PARLEY_ASSIGN_OR_RETURN(has, st.step());
    if (has) continue;
    if (job.no_claims.count(user)) {
      job.unreached.insert(user);  // its node did not answer just now: no claim either
      continue;
    }
    to_claim[user].push_back(d);
  }
  // All claims at once: a node that does not answer costs the wait once. Bundles claimed while
  // fetching the device lists are used as they are.
  std::vector<std::pair<std::string, Result<wire::Message>>> claims;
  std::vector<Session::Request> requests;
  std::vector<std::string> asked;
  for (const auto& [user, devs] : to_claim) {
    if (auto pre = job.claimed.find(user); pre != job.claimed.end()) {
      claims.emplace_back(user, std::move(pre->second));
      job.claimed.erase(pre);
      continue;
    }
    wire::MapWriter c;
    wire::ArrayWriter ids;
    for (const auto& d : devs) ids.push(d.device);
    c.add("address", user).add("devices", ids);
    requests.push_back({"keys_claim", std::move(c)});
    asked.push_back(user);
  }
  if (!requests.empty()) {
    PARLEY_ASSIGN_OR_RETURN(answers, s.call_all(requests, job.wait_ms));
    for (std::size_t i = 0; i < asked.size(); ++i) {
      claims.emplace_back(asked[i], std::move(answers[i]));
    }
  }
  for (auto& [user, claimed] : claims) {
    const auto& devs = to_claim[user];
    if (!claimed.ok() &&
        (claimed.error().code == "unreachable" || claimed.error().code == "timeout")) {
      job.unreached.insert(user);  // only devices with sessions then
      continue;
    }
    PARLEY_ASSIGN_OR_RETURN(re, std::move(claimed));
    PARLEY_ASSIGN_OR_RETURN(bundles, re.root().array("devices"));
    for (const auto& b : bundles) {
      PARLEY_ASSIGN_OR_RETURN(id, b.uint("device"));
      const Listed* listed = nullptr;
      for (const auto& d : devs) {
        if (d.device == id) listed = &d;
      }
      if (!listed) continue;
      PARLEY_ASSIGN_OR_RETURN(spk_blob, b.bin("signed_prekey", 1024));
      auto spk = crypto::parse_signed_prekey(spk_blob, listed->signing_key);
      if (!spk.ok()) continue;  // a prekey its device did not sign: not used
      crypto::PrekeyBundle bundle{listed->dh_key, spk->public_key, std::nullopt};
      wire::MapWriter x;
      x.add_bin("ik", my_dh.public_key()).add("spk", spk->id);
      if (b.has("one_time")) {
        PARLEY_ASSIGN_OR_RETURN(otk, b.map("one_time"));
        PARLEY_ASSIGN_OR_RETURN(otk_key, otk.bin("key", 32));
        PARLEY_ASSIGN_OR_RETURN(otk_id, otk.uint("id"));
        bundle.one_time_prekey = otk_key;
        x.add("opk", otk_id);
      }
      PARLEY_ASSIGN_OR_RETURN(start, crypto::x3dh_initiate(my_dh, bundle));
      PARLEY_ASSIGN_OR_RETURN(session, crypto::RatchetSession::initiator(start, spk->public_key));
      x.add_bin("ek", start.ephemeral_public);
      PARLEY_ASSIGN_OR_RETURN(
          ins, profile_.db().prepare("INSERT INTO e2e_sessions(user, device, ek, state, prekey, "
                                     "active_ms) VALUES(?, ?, ?, ?, ?, ?)"));
      PARLEY_TRY(ins.bind(1, user)
                     .bind(2, static_cast<std::int64_t>(id))
                     .bind_blob(3, start.ephemeral_public)
                     .bind_blob(4, session.serialize().view())
                     .bind_blob(5, x.finish())
                     .bind(6, now_ms())
                     .run());
    }
  }

  // Encrypt for every device with a session, saving the sessions with the outgoing message.
  PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(profile_.db()));
  Envelope envelope;
  envelope.sender_device = my_device;
  for (const auto& [user, d] : targets) {
    PARLEY_ASSIGN_OR_RETURN(
        st, profile_.db().prepare("SELECT ek, state, prekey FROM e2e_sessions WHERE user = ? AND "
                                  "device = ? ORDER BY active_ms DESC LIMIT 1"));
    st.bind(1, user).bind(2, static_cast<std::int64_t>(d.device));
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) continue;
    const std::string ek = st.column_text(0), prekey = st.column_text(2);
    PARLEY_ASSIGN_OR_RETURN(session, crypto::RatchetSession::deserialize(st.column_text(1)));
    const auto own_text = job.padded_for_user.find(user);
    PARLEY_ASSIGN_OR_RETURN(
        out,
        session.encrypt(own_text != job.padded_for_user.end() ? own_text->second : job.padded));
    PARLEY_ASSIGN_OR_RETURN(
        up, profile_.db().prepare("UPDATE e2e_sessions SET state = ? WHERE user = ? AND device = "
                                  "? AND ek = ?"));
    PARLEY_TRY(up.bind_blob(1, session.serialize().view())
                   .bind(2, user)
                   .bind(3, static_cast<std::int64_t>(d.device))
                   .bind_blob(4, ek)
                   .run());
    envelope.entries.push_back({user, d.device, out.header, out.ciphertext, prekey});
  }
  PARLEY_TRY(in_transaction(envelope));
  return tx.commit();
}

namespace {

struct Pending {
  std::int64_t seq = 0;
  StoredMessage m;
  std::int64_t sender_device = 0;
};

}  // namespace

Result<E2e::OpenedEntry> E2e::open_entry(Session& s, const std::string& from,
                                         std::int64_t sender_device, const EnvelopeEntry& entry,
                                         std::map<std::string, std::vector<Listed>>& lists) {
  OpenedEntry o;
  Result<crypto::SecretBytes> plain = make_error("bad_ciphertext", "no session");
  // An X3DH start we have no session for: check the sender device is in its user's signed list,
  // then answer it.
  std::string x_ek;
  if (!entry.prekey.empty()) {
    auto x = wire::Message::parse(entry.prekey);
    if (x.ok()) x_ek = x->root().bin("ek", 32).value_or(std::string());
  }
  bool have_x_session = false;
  if (!x_ek.empty()) {
    PARLEY_ASSIGN_OR_RETURN(
        st, profile_.db().prepare("SELECT 1 FROM e2e_sessions WHERE user = ? AND device = ? AND "
                                  "ek = ?"));
    st.bind(1, from).bind(2, sender_device).bind_blob(3, x_ek);
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    have_x_session = row;
  }
  if (!x_ek.empty() && !have_x_session) {
    auto x = wire::Message::parse(entry.prekey);
    const auto xv = x->root();
    const std::string ik = xv.bin("ik", 32).value_or(std::string());
    if (!lists.count(from)) {
      auto l = trusted_devices(s, from, true);
      if (!l.ok() && l.error().code == "identity_changed") {
        o.defer = true;
        return o;
      }
      lists[from] = l.ok() ? *l : std::vector<Listed>{};
    }
    bool listed = false;
    for (const auto& d : lists[from]) {
      listed |= d.device == static_cast<std::uint64_t>(sender_device) && d.dh_key == ik;
    }
    if (!listed) {
      o.why = "the sending device is not in " + from + "'s signed device list";
      return o;
    }
    PARLEY_ASSIGN_OR_RETURN(keys,
                            load_keys([this](const std::string& k) { return self_value(k); }));
    const auto spk_id = static_cast<std::int64_t>(xv.uint_or("spk", 0).value());
    const auto otk_id = static_cast<std::int64_t>(xv.uint_or("opk", 0).value());
    auto prekey = [&](std::int64_t id) -> std::optional<crypto::DhKeyPair> {
      auto st = profile_.db().prepare("SELECT private FROM e2e_prekeys WHERE id = ?");
      if (!st.ok()) return std::nullopt;
      st->bind(1, id);
      auto row = st->step();
      if (!row.ok() || !*row) return std::nullopt;
      auto kp = crypto::DhKeyPair::from_private(st->column_text(0));
      if (!kp.ok()) return std::nullopt;
      return std::move(kp).value();
    };
    auto spk = prekey(spk_id);
    auto otk = otk_id ? prekey(otk_id) : std::nullopt;
    if (!spk || (otk_id && !otk)) {
      o.why = "the prekey it names is gone (already used)";
      return o;
    }
    auto start = crypto::x3dh_respond(keys.dh, *spk, otk ? &*otk : nullptr, ik, x_ek);
    if (!start.ok()) {
      o.why = start.error().message;
      return o;
    }
    o.session = crypto::RatchetSession::responder(*start, *spk);
    o.session_ek = x_ek;
    o.new_session = true;
    o.used_otk = otk_id;
    plain = o.session->decrypt(entry.header, entry.ciphertext);
  } else {
    // Existing sessions with that device, most recently active first.
    PARLEY_ASSIGN_OR_RETURN(
        st, profile_.db().prepare("SELECT ek, state FROM e2e_sessions WHERE user = ? AND device "
                                  "= ? ORDER BY active_ms DESC"));
    st.bind(1, from).bind(2, sender_device);
    for (;;) {
      PARLEY_ASSIGN_OR_RETURN(row, st.step());
      if (!row) break;
      auto candidate = crypto::RatchetSession::deserialize(st.column_text(1));
      if (!candidate.ok()) continue;
      auto attempt = candidate->decrypt(entry.header, entry.ciphertext);
      if (attempt.ok() || attempt.error().code == "replayed") {
        plain = std::move(attempt);
        if (plain.ok()) {
          o.session = std::move(candidate).value();
          o.session_ek = st.column_text(0);
        }
        break;
      }
      plain = std::move(attempt);
    }
  }
  if (!plain.ok()) {
    o.why = plain.error().message;
    o.session.reset();  // nothing of a failed attempt is kept
    return o;
  }
  o.padded = std::move(plain).value();
  return o;
}

Status E2e::save_opened(const std::string& from, std::int64_t sender_device, const OpenedEntry& o) {
  if (!o.session) return ok_status();
  PARLEY_ASSIGN_OR_RETURN(
      st, profile_.db().prepare("INSERT INTO e2e_sessions(user, device, ek, state, active_ms) "
                                "VALUES(?, ?, ?, ?, ?) ON CONFLICT(user, device, ek) DO UPDATE "
                                "SET state = excluded.state, active_ms = excluded.active_ms, "
                                "prekey = x''"));
  PARLEY_TRY(st.bind(1, from)
                 .bind(2, sender_device)
                 .bind_blob(3, o.session_ek)
                 .bind_blob(4, o.session->serialize().view())
                 .bind(5, now_ms())
                 .run());
  if (o.new_session && o.used_otk) {
    PARLEY_ASSIGN_OR_RETURN(
        del, profile_.db().prepare("DELETE FROM e2e_prekeys WHERE id = ? AND kind = 'otk'"));
    PARLEY_TRY(del.bind(1, o.used_otk).run());
  }
  return ok_status();
}

Status E2e::process_pending(Session& s, const Opened& opened) {
  PARLEY_TRY(open_pending_messages(s, opened));
  // A handover that fails now is tried again later; it never fails what the user asked for.
  (void)hand_over(s);
  return ok_status();
}

Status E2e::open_pending_messages(Session& s, const Opened& opened) {
  PARLEY_ASSIGN_OR_RETURN(device_id_text, profile_.get("device_id"));
  if (device_id_text.empty()) return ok_status();
  const std::uint64_t my_device = std::stoull(device_id_text);
  const std::string me = s.address();
  std::int64_t after = 0;  // messages left pending (e.g. an unaccepted identity) are passed
  // Verified device lists fetched during this round, by user.
  std::map<std::string, std::vector<Listed>> lists;
  for (;;) {
    std::vector<Pending> batch;
    {
      PARLEY_ASSIGN_OR_RETURN(
          st, profile_.db().prepare("SELECT seq, conv, cseq, msg_id, sender, sender_device, "
                                    "recipient, body, sent_ms, ord_sum, ord_actor, ord_seq FROM "
                                    "e2e_pending WHERE seq > ? ORDER BY seq LIMIT 64"));
      st.bind(1, after);
      for (;;) {
        PARLEY_ASSIGN_OR_RETURN(row, st.step());
        if (!row) break;
        Pending p;
        p.seq = st.column_int64(0);
        p.m = {st.column_text(1), st.column_int64(2), st.column_text(3),  st.column_text(4),
               st.column_text(6), st.column_text(7),  st.column_int64(8), ""};
        p.sender_device = st.column_int64(5);
        p.m.ord_sum = st.column_int64(9);
        p.m.ord_actor = st.column_text(10);
        p.m.ord_seq = st.column_int64(11);
        batch.push_back(std::move(p));
      }
    }
    if (batch.empty()) return ok_status();
    after = batch.back().seq;
    for (auto& p : batch) {
      StoredMessage m = p.m;
      const std::string body_bytes = m.body;
      m.body.clear();
      m.status = m.from == me ? "sent" : "received";
      std::string why = "ok";
      std::optional<OpenedEntry> pairwise;  // the session state to save with the message
      std::string received_identity;
      if (is_group(m.conv)) {
        PARLEY_ASSIGN_OR_RETURN(g, open_group(s, m, p.sender_device, body_bytes, lists));
        if (g.defer) continue;  // stays pending
        if (g.why == "ok") m.body = g.text;
        std::vector<StoredMessage> reopened;
        PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(profile_.db()));
        PARLEY_TRY(save_group(p.seq, m, p.sender_device, body_bytes, g, reopened));
        if (!g.handover) PARLEY_TRY(profile_.add_message(m, g.why));
        PARLEY_ASSIGN_OR_RETURN(del,
                                profile_.db().prepare("DELETE FROM e2e_pending WHERE seq = ?"));
        PARLEY_TRY(del.bind(1, p.seq).run());
        PARLEY_TRY(tx.commit());
        if (opened && !g.handover) opened(m, g.why);
        for (const auto& r : reopened) {
          if (opened) opened(r, "ok");
        }
        continue;
      }
      if (m.from == me && static_cast<std::uint64_t>(p.sender_device) == my_device) {
        // Sent from this device: the plaintext is in the outbox.
        PARLEY_ASSIGN_OR_RETURN(
            st, profile_.db().prepare("SELECT plaintext FROM e2e_outbox WHERE msg_id = ?"));
        st.bind(1, m.msg_id);
        PARLEY_ASSIGN_OR_RETURN(row, st.step());
        if (row) {
          m.body = st.column_text(0);
        } else {
          why = "sent from this device before its keys were kept";
        }
      } else {
        auto env = Envelope::decode(body_bytes);
        const EnvelopeEntry* entry = env.ok() ? env->entry_for(me, my_device) : nullptr;
        if (!env.ok()) {
          why = "not an end-to-end envelope";
        } else if (!entry) {
          why = "not encrypted for this device";
        } else {
          PARLEY_ASSIGN_OR_RETURN(o, open_entry(s, m.from, p.sender_device, *entry, lists));
          if (o.defer) continue;  // stays pending
          why = o.why;
          if (why == "ok") {
            auto in = inner_of(o.padded.view());
            if (!in.ok()) {
              why = in.error().message;
            } else if (in->root().str_or("id", "", 64).value() != m.msg_id) {
              why = "the ciphertext belongs to another message";
            } else if (m.conv.empty()) {
              // From another device of ours: the identity key, handed over at approval.
              if (in->root().str_or("kind", "", 16).value() == "identity") {
                received_identity = in->root().bin("seed", 32).value_or(std::string());
              }
            } else {
              m.body = in->root().bin("text", 1u << 24).value_or(std::string());
            }
          }
          if (why == "ok") pairwise = std::move(o);
        }
      }
      if (why != "ok") m.body.clear();
      if (m.conv.empty() && !received_identity.empty()) {
        // Only from a device our signed list names, and only the identity key the node serves.
        auto own = trusted_devices(s, me, true);
        bool listed = false;
        if (own.ok()) {
          for (const auto& d : *own)
            listed |= d.device == static_cast<std::uint64_t>(p.sender_device);
        }
        auto key = crypto::SigningKey::from_seed(received_identity);
        PARLEY_ASSIGN_OR_RETURN(
            st, profile_.db().prepare("SELECT identity FROM e2e_peers WHERE user = ?"));
        st.bind(1, me);
        PARLEY_ASSIGN_OR_RETURN(row, st.step());
        if (!listed || !key.ok() || !row || st.column_text(0) != key->public_key()) {
          received_identity.clear();
        }
      }
      PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(profile_.db()));
      if (pairwise) PARLEY_TRY(save_opened(m.from, p.sender_device, *pairwise));
      if (!m.conv.empty()) {
        PARLEY_TRY(profile_.add_message(m, why));
      } else if (!received_identity.empty()) {
        PARLEY_TRY(set_self_value("identity_seed", received_identity));
      }
      {
        PARLEY_ASSIGN_OR_RETURN(del,
                                profile_.db().prepare("DELETE FROM e2e_pending WHERE seq = ?"));
        PARLEY_TRY(del.bind(1, p.seq).run());
      }
      PARLEY_TRY(tx.commit());
      if (opened && !m.conv.empty()) opened(m, why);
    }
    PARLEY_TRY(rotate_signed_prekey(s, false).status());
    // Keep enough one-time prekeys on the node: by this device's count of unused ones, and by
    // the node's (which withdraws them all when it is restored from a backup).
    PARLEY_ASSIGN_OR_RETURN(
        cnt, profile_.db().prepare("SELECT count(*) FROM e2e_prekeys WHERE kind = 'otk'"));
    PARLEY_TRY(cnt.step());
    bool low = cnt.column_int64(0) < kOneTimeLow;
    if (!low) {
      PARLEY_ASSIGN_OR_RETURN(left, s.call("keys_publish", wire::MapWriter()));
      PARLEY_ASSIGN_OR_RETURN(n, left.root().uint_or("one_time_left", 0));
      low = n < static_cast<std::uint64_t>(kOneTimeLow);
    }
    if (low) {
      PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(profile_.db()));
      PARLEY_ASSIGN_OR_RETURN(next_text, self_value("next_prekey_id"));
      std::int64_t next = std::stoll(next_text);
      PARLEY_ASSIGN_OR_RETURN(list, new_one_time_prekeys(profile_.db(), next, kOneTimeBatch));
      wire::MapWriter f;
      f.add("one_time", list);
      PARLEY_TRY(s.call("keys_publish", f).status());
      PARLEY_TRY(set_self_value("next_prekey_id", std::to_string(next)));
      PARLEY_TRY(tx.commit());
    }
  }
}

Result<std::vector<DeviceInfo>> E2e::devices(Session& s, const std::string& user) {
  PARLEY_ASSIGN_OR_RETURN(device_id_text, profile_.get("device_id"));
  wire::MapWriter q;
  q.add("address", user);
  PARLEY_ASSIGN_OR_RETURN(re, s.call("keys_query", q));
  PARLEY_ASSIGN_OR_RETURN(listed, trusted_devices(s, user, false));
  std::vector<DeviceInfo> out;
  PARLEY_ASSIGN_OR_RETURN(devs, re.root().array("devices"));
  for (const auto& d : devs) {
    DeviceInfo info;
    info.device = d.uint("device").value_or(0);
    info.self = user == s.address() && std::to_string(info.device) == device_id_text;
    for (const auto& l : listed) info.trusted |= l.device == info.device;
    if (auto cert = crypto::parse_device_cert(d.bin("cert", 1024).value_or(std::string()));
        cert.ok()) {
      info.fingerprint = crypto::hex_encode(crypto::generichash(cert->signing_key, 16));
    }
    out.push_back(info);
  }
  return out;
}

Result<E2e::OwnList> E2e::own_list(Session& s) {
  PARLEY_ASSIGN_OR_RETURN(identity_seed, self_value("identity_seed"));
  if (identity_seed.empty()) {
    return make_error("not_allowed",
                      "this device does not hold your identity key; change your device list "
                      "from the device you first logged in with");
  }
  PARLEY_ASSIGN_OR_RETURN(identity, crypto::SigningKey::from_seed(identity_seed));
  wire::MapWriter q;
  q.add("address", s.address());
  PARLEY_ASSIGN_OR_RETURN(re, s.call("keys_query", q));
  PARLEY_ASSIGN_OR_RETURN(
      list, crypto::parse_device_list(re.root().bin("device_list", 16384).value_or(std::string()),
                                      identity.public_key(), s.address()));
  return OwnList{std::move(identity), std::move(list), std::move(re)};
}

Status E2e::publish_list(Session& s, OwnList& own) {
  ++own.list.version;
  wire::MapWriter f;
  f.add_bin("device_list", crypto::encode_device_list(own.list, own.identity))
      .add("list_version", own.list.version);
  return s.call("keys_publish", f).status();
}

Status E2e::send_identity(Session& s, std::uint64_t device) {
  PARLEY_ASSIGN_OR_RETURN(identity_seed, self_value("identity_seed"));
  PARLEY_ASSIGN_OR_RETURN(self, me(s));
  PARLEY_ASSIGN_OR_RETURN(own, trusted_devices(s, self.address, true));
  std::vector<std::pair<std::string, Listed>> targets;
  for (const auto& d : own) {
    if (d.device == device) targets.emplace_back(self.address, d);
  }
  if (targets.empty())
    return make_error("not_found", "device " + std::to_string(device) + " is not approved");
  const std::string td_id = crypto::hex_encode(crypto::random_bytes(12));
  wire::MapWriter in;
  in.add("id", td_id).add("kind", "identity").add_bin("seed", identity_seed);
  std::string body;
  SealJob job;
  job.targets = std::move(targets);
  job.padded = crypto::pad_message(in.finish());
  PARLEY_TRY(seal_for(s, self.keys.dh, self.device, job, [&](const Envelope& envelope) -> Status {
    if (envelope.entries.empty()) {
      return make_error("unreachable", "no session with that device");
    }
    body = envelope.encode();
    return ok_status();
  }));
  wire::MapWriter f;
  f.add("device", device).add("td_id", td_id).add_bin("body", body);
  return s.call("to_device", f).status();
}

Status E2e::approve(Session& s, std::uint64_t device) {
  PARLEY_ASSIGN_OR_RETURN(own, own_list(s));
  if (own.list.find(device)) return ok_status();  // already approved
  PARLEY_ASSIGN_OR_RETURN(devs, own.query.root().array("devices"));
  for (const auto& d : devs) {
    if (d.uint("device").value_or(0) != device) continue;
    PARLEY_ASSIGN_OR_RETURN(cert,
                            crypto::parse_device_cert(d.bin("cert", 1024).value_or(std::string())));
    own.list.devices.push_back({device, cert.signing_key, cert.dh_key});
    PARLEY_TRY(publish_list(s, own));
    // The approved device gets the identity key too, so it can approve devices in turn.
    return send_identity(s, device);
  }
  return make_error("not_found", "device " + std::to_string(device) +
                                     " has not published keys (has it logged in?)");
}

Result<bool> E2e::rotate_signed_prekey(Session& s, bool force) {
  PARLEY_TRY(ensure_device_keys());
  PARLEY_ASSIGN_OR_RETURN(spk_id_text, self_value("spk_id"));
  const std::int64_t now = now_ms();
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, profile_.db().prepare("SELECT created_ms FROM e2e_prekeys WHERE id = ?"));
    st.bind(1, std::stoll(spk_id_text));
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (row && !force && now - st.column_int64(0) < kSignedPrekeyLifetimeMs) return false;
  }
  auto get = [this](const std::string& k) { return self_value(k); };
  PARLEY_ASSIGN_OR_RETURN(keys, load_keys(get));
  PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(profile_.db()));
  PARLEY_ASSIGN_OR_RETURN(next_text, self_value("next_prekey_id"));
  const std::int64_t id = std::stoll(next_text);
  const auto spk = crypto::DhKeyPair::generate();
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, profile_.db().prepare("INSERT INTO e2e_prekeys(id, kind, private, created_ms) "
                                  "VALUES(?, 'spk', ?, ?)"));
    PARLEY_TRY(st.bind(1, id).bind_blob(2, spk.private_key()).bind(3, now).run());
  }
  {
    // Signed prekeys replaced more than the grace period ago are gone for good.
    PARLEY_ASSIGN_OR_RETURN(
        st, profile_.db().prepare("DELETE FROM e2e_prekeys WHERE kind = 'spk' AND id != ? AND "
                                  "created_ms < ?"));
    PARLEY_TRY(st.bind(1, id).bind(2, now - kSignedPrekeyGraceMs - kSignedPrekeyLifetimeMs).run());
  }
  PARLEY_TRY(set_self_value("spk_id", std::to_string(id)));
  PARLEY_TRY(set_self_value("next_prekey_id", std::to_string(id + 1)));
  wire::MapWriter f;
  f.add_bin("signed_prekey",
            crypto::encode_signed_prekey(keys.signing, static_cast<std::uint64_t>(id), spk));
  PARLEY_TRY(s.call("keys_publish", f).status());
  PARLEY_TRY(tx.commit());
  return true;
}

Status E2e::remove_device(Session& s, std::uint64_t device) {
  PARLEY_ASSIGN_OR_RETURN(device_id_text, profile_.get("device_id"));
  if (std::to_string(device) == device_id_text) {
    return make_error("bad_request", "this is the device holding your identity key");
  }
  PARLEY_ASSIGN_OR_RETURN(own, own_list(s));
  const auto before = own.list.devices.size();
  std::erase_if(own.list.devices,
                [&](const crypto::ListedDevice& d) { return d.device == device; });
  if (own.list.devices.size() == before) {
    return make_error("not_found", "device " + std::to_string(device) + " is not in your list");
  }
  return publish_list(s, own);
}

Result<std::string> E2e::safety_number(Session& s, const std::string& peer) {
  PARLEY_TRY(trusted_devices(s, peer, false).status());
  auto identity_of = [this](const std::string& user) -> Result<std::string> {
    PARLEY_ASSIGN_OR_RETURN(
        st, profile_.db().prepare("SELECT CASE state WHEN 'changed' THEN new_identity ELSE "
                                  "identity END FROM e2e_peers WHERE user = ?"));
    st.bind(1, user);
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) return make_error("not_found", "no identity key known for " + user);
    return st.column_text(0);
  };
  PARLEY_TRY(trusted_devices(s, s.address(), false).status());
  PARLEY_ASSIGN_OR_RETURN(mine, identity_of(s.address()));
  PARLEY_ASSIGN_OR_RETURN(theirs, identity_of(peer));
  return crypto::safety_number(s.address(), mine, peer, theirs);
}

Status E2e::trust(Session& s, const std::string& peer) {
  PARLEY_TRY(trusted_devices(s, peer, false).status());
  PARLEY_ASSIGN_OR_RETURN(
      st, profile_.db().prepare("UPDATE e2e_peers SET identity = new_identity, new_identity = "
                                "x'', state = 'trusted' WHERE user = ? AND state = 'changed'"));
  PARLEY_TRY(st.bind(1, peer).run());
  // Sessions with the old identity's devices are over.
  PARLEY_ASSIGN_OR_RETURN(del, profile_.db().prepare("DELETE FROM e2e_sessions WHERE user = ?"));
  return del.bind(1, peer).run();
}

}  // namespace parley::client
