// Group messages with sender keys (spec/crypto.md sections 6 and 8a): sealing a message for the
// members' devices, opening one, and the key handover — a member whose node did not answer when
// this device sent is given this device's chain, from the first message it missed, once their
// node answers again, so the message goes out to everyone else at once.
#include <algorithm>

#include "e2e_internal.h"
#include "parley/client/envelope.h"
#include "parley/client/session.h"
#include "parley/crypto/group.h"
#include "parley/crypto/hash.h"

namespace parley::client {

using namespace e2e_detail;

namespace {

// At most this many group messages wait for a chain this device lacks (the oldest go first), so
// a sender that never hands its chain over cannot grow the profile without bound.
constexpr std::int64_t kMaxWaiting = 2000;
// A handover that found the member's node down is tried again after 5 s, doubling up to 60 s.
constexpr std::int64_t kHandoverRetryMs = 5000;
constexpr std::int64_t kHandoverRetryMaxMs = 60000;

// The padded plaintext that gives a chain (section 8a, "dist").
std::string distribution_padded(const std::string& conv, std::string_view skd) {
  wire::MapWriter inner;
  inner.add("group", conv).add_bin("skd", skd);
  crypto::SecretBytes plain(inner.finish());
  return crypto::pad_message(std::string(plain.view()));
}

// Which of this device's messages carried a distribution (to know when it was stored).
std::string message_tag(std::string_view sk) {
  return crypto::hex_encode(crypto::generichash(sk, 16));
}

}  // namespace

Result<std::string> E2e::seal_group(Session& s, const std::string& conv,
                                    const std::vector<std::string>& members,
                                    const std::string& plaintext) {
  PARLEY_ASSIGN_OR_RETURN(self, me(s));
  // Every member's device list at once, each node given the same bounded time: one that does
  // not answer makes its users wait for a handover instead of holding up the send.
  std::vector<std::string> users{self.address};
  for (const auto& member : members) {
    if (member != self.address && std::find(users.begin(), users.end(), member) == users.end()) {
      users.push_back(member);
    }
  }
  // Members this device has no session with yet are asked with keys_claim right away: the same
  // answer gives their list and the prekeys to start sessions (one round trip, not two).
  Lookup lookup;
  for (const auto& user : users) {
    PARLEY_ASSIGN_OR_RETURN(known, has_session_with(user));
    if (user != self.address && !known) lookup.claim.insert(user);
  }
  PARLEY_ASSIGN_OR_RETURN(lists,
                          trusted_devices_of(s, users, true, kGroupDirectoryWaitMs, &lookup));
  PARLEY_ASSIGN_OR_RETURN(own, std::move(lists.at(self.address)));
  bool approved = false;
  for (const auto& d : own) {
    approved |= d.device == self.device && d.dh_key == self.keys.dh.public_key();
  }
  if (!approved) {
    return make_error("not_approved",
                      "this device is not in your signed device list yet; approve it from "
                      "another of your devices: parley devices approve " +
                          std::to_string(self.device));
  }
  std::vector<std::pair<std::string, Listed>> targets;
  std::set<std::string> missed;  // members whose node did not answer and whose list we lack
  for (const auto& member : users) {
    if (member == self.address) continue;
    auto& theirs = lists.at(member);
    if (!theirs.ok()) {
      if (theirs.error().code == "identity_changed") return theirs.take_error();
      if (theirs.error().code == "unreachable") missed.insert(member);
      continue;  // no keys (yet): cannot read it
    }
    for (const auto& d : *theirs) targets.emplace_back(member, d);
  }
  for (const auto& d : own) {
    if (d.device != self.device) targets.emplace_back(self.address, d);
  }

  // This device's sending chain for the group. A device that was given it and is no longer a
  // target (its user left or was removed, or the device was) means a new chain: it must not
  // read what follows.
  std::optional<crypto::SenderKeyChain> chain;
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, profile_.db().prepare("SELECT chain FROM e2e_group_chains WHERE conv = ?"));
    st.bind(1, conv);
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (row) {
      PARLEY_ASSIGN_OR_RETURN(c, crypto::SenderKeyChain::deserialize(st.column_text(0)));
      chain = std::move(c);
    }
  }
  std::set<std::pair<std::string, std::uint64_t>> given, now;
  for (const auto& [user, d] : targets) now.emplace(user, d.device);
  if (chain) {
    PARLEY_ASSIGN_OR_RETURN(
        st, profile_.db().prepare("SELECT user, device FROM e2e_group_dist WHERE conv = ? AND "
                                  "chain_id = ?"));
    st.bind(1, conv).bind_blob(2, chain->chain_id());
    for (;;) {
      PARLEY_ASSIGN_OR_RETURN(row, st.step());
      if (!row) break;
      given.emplace(st.column_text(0), static_cast<std::uint64_t>(st.column_int64(1)));
    }
  }
  const bool rekey = !chain || std::any_of(given.begin(), given.end(),
                                           [&](const auto& g) { return !now.count(g); });
  if (rekey) {
    chain = crypto::SenderKeyChain::create();
    given.clear();
  }
  SealJob job;
  job.wait_ms = kGroupDirectoryWaitMs;
  job.no_claims = lookup.unanswered;
  job.claimed = std::move(lookup.claimed);
  for (const auto& t : targets) {
    if (!given.count({t.first, t.second.device})) job.targets.push_back(t);
  }
  // The distribution first: it lets them read this message too. Members still waiting for a
  // handover of this chain get it from the first message they missed instead.
  const crypto::SecretBytes skd = chain->distribution();
  job.padded = distribution_padded(conv, skd.view());
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, profile_.db().prepare("SELECT user, dist FROM e2e_group_handover WHERE conv = ? AND "
                                  "chain_id = ?"));
    st.bind(1, conv).bind_blob(2, chain->chain_id());
    for (;;) {
      PARLEY_ASSIGN_OR_RETURN(row, st.step());
      if (!row) break;
      job.padded_for_user[st.column_text(0)] = distribution_padded(conv, st.column_text(1));
    }
  }
  GroupBody body;
  body.sender_device = self.device;
  PARLEY_ASSIGN_OR_RETURN(sk, chain->encrypt(crypto::pad_message(group_inner(conv, plaintext)),
                                             group_ad(conv, self.address, self.device)));
  body.message = std::move(sk);
  PARLEY_TRY(seal_for(s, self.keys.dh, self.device, job, [&](const Envelope& envelope) -> Status {
    if (!envelope.entries.empty()) body.dist = envelope;
    PARLEY_ASSIGN_OR_RETURN(
        st, profile_.db().prepare("INSERT INTO e2e_group_chains(conv, chain, created_ms) "
                                  "VALUES(?1, ?2, ?3) ON CONFLICT(conv) DO UPDATE SET chain = "
                                  "?2, created_ms = CASE WHEN ?4 THEN ?3 ELSE created_ms END"));
    PARLEY_TRY(st.bind(1, conv)
                   .bind_blob(2, chain->serialize().view())
                   .bind(3, now_ms())
                   .bind(4, std::int64_t{rekey ? 1 : 0})
                   .run());
    // Who could not be given the chain waits for a handover from this message's iteration on
    // (the earliest one kept); who gets it now is done once the node stored this message.
    std::set<std::string> later = missed;
    later.insert(job.unreached.begin(), job.unreached.end());
    for (const auto& user : later) {
      PARLEY_ASSIGN_OR_RETURN(
          ins, profile_.db().prepare(
                   "INSERT INTO e2e_group_handover(conv, user, chain_id, dist, created_ms, "
                   "next_ms) VALUES(?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET covered_by = "
                   "''"));
      // Not retried at once: the node just did not answer (and the next command should not
      // wait for it again).
      PARLEY_TRY(ins.bind(1, conv)
                     .bind(2, user)
                     .bind_blob(3, chain->chain_id())
                     .bind_blob(4, skd.view())
                     .bind(5, now_ms())
                     .bind(6, now_ms() + kHandoverRetryMs)
                     .run());
    }
    for (const auto& e : envelope.entries) {
      if (later.count(e.user)) continue;
      PARLEY_ASSIGN_OR_RETURN(
          up, profile_.db().prepare("UPDATE e2e_group_handover SET covered_by = ? WHERE conv = ? "
                                    "AND user = ? AND chain_id = ?"));
      PARLEY_TRY(up.bind(1, message_tag(body.message))
                     .bind(2, conv)
                     .bind(3, e.user)
                     .bind_blob(4, chain->chain_id())
                     .run());
    }
    return ok_status();
  }));
  for (auto& [user, padded] : job.padded_for_user) crypto::SecretBytes(std::move(padded)).wipe();
  crypto::SecretBytes(std::move(job.padded)).wipe();
  return body.encode();
}

Status E2e::remember_sent(const std::string& msg_id, const std::string& conv,
                          const std::string& plaintext, const std::string& body) {
  PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(profile_.db()));
  {
    PARLEY_ASSIGN_OR_RETURN(
        ob, profile_.db().prepare("INSERT OR IGNORE INTO e2e_outbox(msg_id, peer, plaintext, "
                                  "envelope, created_ms) VALUES(?, ?, ?, ?, ?)"));
    PARLEY_TRY(ob.bind(1, msg_id)
                   .bind(2, conv)
                   .bind_blob(3, plaintext)
                   .bind_blob(4, body)
                   .bind(5, now_ms())
                   .run());
  }
  // The devices that now hold this device's chain (the node stored the message that gave it).
  PARLEY_ASSIGN_OR_RETURN(g, GroupBody::decode(body));
  if (g.dist) {
    PARLEY_ASSIGN_OR_RETURN(chain_id, crypto::sender_key_chain_of(g.message));
    for (const auto& e : g.dist->entries) {
      PARLEY_ASSIGN_OR_RETURN(
          st, profile_.db().prepare("INSERT OR IGNORE INTO e2e_group_dist(conv, chain_id, user, "
                                    "device) VALUES(?, ?, ?, ?)"));
      PARLEY_TRY(st.bind(1, conv)
                     .bind_blob(2, chain_id)
                     .bind(3, e.user)
                     .bind(4, static_cast<std::int64_t>(e.device))
                     .run());
    }
    // Handovers this message made (it gave their chain from where they missed it).
    PARLEY_ASSIGN_OR_RETURN(
        del, profile_.db().prepare("DELETE FROM e2e_group_handover WHERE conv = ? AND chain_id = "
                                   "? AND covered_by = ?"));
    PARLEY_TRY(del.bind(1, conv).bind_blob(2, chain_id).bind(3, message_tag(g.message)).run());
  }
  return tx.commit();
}

Status E2e::hand_over(Session& s) {
  const std::int64_t now = now_ms();
  struct Due {
    std::string conv, user, chain_id, dist;
    std::int64_t attempts = 0;
  };
  std::vector<Due> due;
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, profile_.db().prepare("SELECT conv, user, chain_id, dist, attempts FROM "
                                  "e2e_group_handover WHERE next_ms <= ? ORDER BY created_ms "
                                  "LIMIT 100"));
    st.bind(1, now);
    for (;;) {
      PARLEY_ASSIGN_OR_RETURN(row, st.step());
      if (!row) break;
      due.push_back({st.column_text(0), st.column_text(1), st.column_text(2), st.column_text(3),
                     st.column_int64(4)});
    }
  }
  if (due.empty()) return ok_status();
  auto forget = [&](const Due& d) -> Status {
    PARLEY_ASSIGN_OR_RETURN(
        st, profile_.db().prepare("DELETE FROM e2e_group_handover WHERE conv = ? AND user = ? AND "
                                  "chain_id = ?"));
    return st.bind(1, d.conv).bind(2, d.user).bind_blob(3, d.chain_id).run();
  };
  auto later = [&](const Due& d) -> Status {
    const std::int64_t wait =
        std::min(kHandoverRetryMaxMs, kHandoverRetryMs << std::min<std::int64_t>(d.attempts, 8));
    PARLEY_ASSIGN_OR_RETURN(
        st, profile_.db().prepare("UPDATE e2e_group_handover SET attempts = attempts + 1, "
                                  "next_ms = ? WHERE conv = ? AND user = ? AND chain_id = ?"));
    return st.bind(1, now + wait).bind(2, d.conv).bind(3, d.user).bind_blob(4, d.chain_id).run();
  };
  PARLEY_ASSIGN_OR_RETURN(self, me(s));

  // Only to users who are still members (of a group this user is still in).
  std::map<std::string, std::set<std::string>> members;
  for (const auto& d : due) {
    if (members.count(d.conv)) continue;
    wire::MapWriter f;
    f.add("conv", d.conv);
    auto re = s.call("group_members", f);
    auto& set = members[d.conv];
    if (!re.ok()) {
      if (re.error().code != "not_found") return re.take_error();
      continue;  // not a member any more: nothing to hand over
    }
    PARLEY_ASSIGN_OR_RETURN(list, re->root().array("members"));
    for (const auto& m : list) set.insert(m.str_or("user", "", 320).value());
  }
  std::vector<std::string> users;
  for (const auto& d : due) {
    if (members[d.conv].count(d.user) &&
        std::find(users.begin(), users.end(), d.user) == users.end()) {
      users.push_back(d.user);
    }
  }
  Lookup lookup;
  for (const auto& user : users) {
    PARLEY_ASSIGN_OR_RETURN(known, has_session_with(user));
    if (!known) lookup.claim.insert(user);
  }
  PARLEY_ASSIGN_OR_RETURN(lists,
                          trusted_devices_of(s, users, true, kGroupDirectoryWaitMs, &lookup));
  const auto& unanswered = lookup.unanswered;

  // One handover event per (group, chain), with an entry for each device still lacking it.
  std::map<std::pair<std::string, std::string>, std::vector<const Due*>> by_chain;
  for (const auto& d : due) {
    if (!members[d.conv].count(d.user)) {
      PARLEY_TRY(forget(d));
      continue;
    }
    auto& theirs = lists.at(d.user);
    if (!theirs.ok() || unanswered.count(d.user)) {
      // Unreachable still (or an identity change not accepted yet): later. No keys at all: a
      // member without devices cannot be given anything.
      PARLEY_TRY(!theirs.ok() && theirs.error().code == "not_found" ? forget(d) : later(d));
      continue;
    }
    by_chain[{d.conv, d.chain_id}].push_back(&d);
  }
  for (const auto& [key, rows] : by_chain) {
    const auto& [conv, chain_id] = key;
    std::set<std::pair<std::string, std::uint64_t>> holding;
    {
      PARLEY_ASSIGN_OR_RETURN(
          st, profile_.db().prepare("SELECT user, device FROM e2e_group_dist WHERE conv = ? AND "
                                    "chain_id = ?"));
      st.bind(1, conv).bind_blob(2, chain_id);
      for (;;) {
        PARLEY_ASSIGN_OR_RETURN(row, st.step());
        if (!row) break;
        holding.emplace(st.column_text(0), static_cast<std::uint64_t>(st.column_int64(1)));
      }
    }
    SealJob job;
    job.wait_ms = kGroupDirectoryWaitMs;
    for (const Due* d : rows) {
      if (auto c = lookup.claimed.find(d->user); c != lookup.claimed.end()) {
        job.claimed.emplace(d->user, std::move(c->second));
        lookup.claimed.erase(c);
      }
    }
    std::vector<const Due*> handing;
    for (const Due* d : rows) {
      bool any = false;
      for (const auto& dev : *lists.at(d->user)) {
        if (holding.count({d->user, dev.device})) continue;
        job.targets.emplace_back(d->user, dev);
        any = true;
      }
      if (!any) {
        PARLEY_TRY(forget(*d));  // every device of theirs holds it by now
        continue;
      }
      job.padded_for_user[d->user] = distribution_padded(conv, d->dist);
      handing.push_back(d);
    }
    if (handing.empty()) continue;
    std::optional<Envelope> envelope;
    PARLEY_TRY(seal_for(s, self.keys.dh, self.device, job, [&](const Envelope& e) -> Status {
      if (!e.entries.empty()) envelope = e;
      return ok_status();
    }));
    for (auto& [user, padded] : job.padded_for_user) crypto::SecretBytes(std::move(padded)).wipe();
    std::set<std::string> reached;
    if (envelope) {
      for (const auto& e : envelope->entries) reached.insert(e.user);
    }
    if (reached.empty()) {
      for (const Due* d : handing) PARLEY_TRY(later(*d));
      continue;
    }
    // A group message event without a sender-key message: only the chain, for these devices.
    GroupBody handover;
    handover.sender_device = self.device;
    handover.dist = std::move(envelope);
    wire::MapWriter f;
    f.add("conv", conv).add("kind", "message").add_bin("body", handover.encode());
    auto sent = s.call("group_event", f);
    if (!sent.ok()) {
      if (sent.error().code == "not_found" || sent.error().code == "not_allowed") {
        for (const Due* d : handing) PARLEY_TRY(forget(*d));  // we are no longer a member
        continue;
      }
      for (const Due* d : handing) PARLEY_TRY(later(*d));
      continue;
    }
    PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(profile_.db()));
    for (const auto& e : handover.dist->entries) {
      PARLEY_ASSIGN_OR_RETURN(
          st, profile_.db().prepare("INSERT OR IGNORE INTO e2e_group_dist(conv, chain_id, user, "
                                    "device) VALUES(?, ?, ?, ?)"));
      PARLEY_TRY(st.bind(1, conv)
                     .bind_blob(2, chain_id)
                     .bind(3, e.user)
                     .bind(4, static_cast<std::int64_t>(e.device))
                     .run());
    }
    for (const Due* d : handing) PARLEY_TRY(reached.count(d->user) ? forget(*d) : later(*d));
    PARLEY_TRY(tx.commit());
  }
  return ok_status();
}

Result<E2e::OpenedGroup> E2e::open_group(Session& s, const StoredMessage& m,
                                         std::int64_t sender_device, const std::string& body,
                                         std::map<std::string, std::vector<Listed>>& lists) {
  OpenedGroup out;
  PARLEY_ASSIGN_OR_RETURN(device_id_text, profile_.get("device_id"));
  const std::uint64_t my_device = std::stoull(device_id_text);
  const std::string& me = s.address();
  auto g = GroupBody::decode(body);
  if (!g.ok()) {
    out.why = "not a group message body";
    return out;
  }
  out.handover = g->message.empty();
  const bool own = m.from == me && static_cast<std::uint64_t>(sender_device) == my_device;
  if (own) {
    if (out.handover) return out;  // this device's own handover: nothing to show
    // Sent from this device: the plaintext is in the outbox.
    PARLEY_ASSIGN_OR_RETURN(
        st, profile_.db().prepare("SELECT plaintext FROM e2e_outbox WHERE msg_id = ?"));
    st.bind(1, m.msg_id);
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (row) {
      out.text = st.column_text(0);
    } else {
      out.why = "sent from this device before its keys were kept";
    }
    return out;
  }
  // The sender's chain, if this device was given it with this event.
  std::optional<crypto::SenderKeyReceiver> given;
  std::string dist_why;
  const EnvelopeEntry* entry = g->dist ? g->dist->entry_for(me, my_device) : nullptr;
  if (entry) {
    PARLEY_ASSIGN_OR_RETURN(o, open_entry(s, m.from, sender_device, *entry, lists));
    if (o.defer) {
      out.defer = true;
      return out;
    }
    if (o.why == "ok") {
      auto in = inner_of(o.padded.view());
      auto skd = in.ok() ? in->root().bin("skd", 128) : Result<std::string>(in.error());
      auto r = skd.ok() ? crypto::SenderKeyReceiver::from_distribution(*skd)
                        : Result<crypto::SenderKeyReceiver>(skd.error());
      if (!in.ok() || in->root().str_or("group", "", 128).value() != m.conv || !r.ok()) {
        dist_why = "a malformed sender key for this group";
      } else {
        given = std::move(r).value();
      }
    } else {
      dist_why = o.why;
    }
    out.pairwise = std::move(o);
  }
  // The chain this event is about: the message's, or (a handover) the one it gives.
  std::string chain_id;
  if (out.handover) {
    if (!given) return out;  // not for this device, or not usable: nothing to keep
    chain_id = given->chain_id();
  } else {
    auto id = crypto::sender_key_chain_of(g->message);
    if (!id.ok()) {
      out.why = "not a group message body";
      return out;
    }
    chain_id = std::move(id).value();
  }
  // A chain already held wins over a copy given again (which could only move it back).
  PARLEY_ASSIGN_OR_RETURN(
      st, profile_.db().prepare("SELECT state FROM e2e_group_receivers WHERE conv = ? AND "
                                "sender = ? AND device = ? AND chain_id = ?"));
  st.bind(1, m.conv).bind(2, m.from).bind(3, sender_device).bind_blob(4, chain_id);
  PARLEY_ASSIGN_OR_RETURN(held, st.step());
  if (held) {
    if (out.handover) return out;
    PARLEY_ASSIGN_OR_RETURN(state, crypto::SenderKeyReceiver::deserialize(st.column_text(0)));
    out.receiver.emplace(chain_id, std::move(state));
  } else if (given && given->chain_id() == chain_id) {
    out.receiver.emplace(chain_id, std::move(*given));
    out.fresh = true;
  } else {
    out.why = dist_why.empty() ? "no sender key from that device for this group" : dist_why;
    out.waiting_chain = chain_id;  // a handover may bring it
    return out;
  }
  if (out.handover) return out;
  auto plain = out.receiver->second.decrypt(
      g->message, group_ad(m.conv, m.from, static_cast<std::uint64_t>(sender_device)));
  auto in = plain.ok() ? inner_of(plain->view()) : Result<wire::Message>(plain.error());
  if (!in.ok()) {
    out.why = in.error().message;
  } else if (in->root().str_or("group", "", 128).value() != m.conv) {
    out.why = "the ciphertext belongs to another group";
  } else {
    out.text = in->root().bin("text", 1u << 24).value_or(std::string());
  }
  // A new chain is kept even if its first message failed; a held one only advances.
  if (out.why != "ok" && !out.fresh) out.receiver.reset();
  return out;
}

Status E2e::save_group(std::int64_t seq, const StoredMessage& m, std::int64_t sender_device,
                       const std::string& body, OpenedGroup& g,
                       std::vector<StoredMessage>& reopened) {
  if (g.pairwise) PARLEY_TRY(save_opened(m.from, sender_device, *g.pairwise));
  if (!g.waiting_chain.empty()) {
    PARLEY_ASSIGN_OR_RETURN(
        st, profile_.db().prepare("INSERT OR IGNORE INTO e2e_group_waiting(seq, conv, cseq, "
                                  "msg_id, sender, device, chain_id, body, sent_ms) VALUES(?, ?, "
                                  "?, ?, ?, ?, ?, ?, ?)"));
    PARLEY_TRY(st.bind(1, seq)
                   .bind(2, m.conv)
                   .bind(3, m.cseq)
                   .bind(4, m.msg_id)
                   .bind(5, m.from)
                   .bind(6, sender_device)
                   .bind_blob(7, g.waiting_chain)
                   .bind_blob(8, body)
                   .bind(9, m.sent_ms)
                   .run());
    PARLEY_ASSIGN_OR_RETURN(
        trim, profile_.db().prepare("DELETE FROM e2e_group_waiting WHERE seq <= (SELECT seq FROM "
                                    "e2e_group_waiting ORDER BY seq DESC LIMIT 1 OFFSET ?)"));
    PARLEY_TRY(trim.bind(1, kMaxWaiting).run());
  }
  if (!g.receiver) return ok_status();
  auto& [chain_id, receiver] = *g.receiver;
  if (g.fresh) {
    // Messages that waited for this chain (a key handover, or a distribution given late).
    struct Waiting {
      std::int64_t seq, cseq, sent_ms;
      std::string msg_id, body;
    };
    std::vector<Waiting> waiting;
    {
      PARLEY_ASSIGN_OR_RETURN(
          st, profile_.db().prepare("SELECT seq, cseq, msg_id, body, sent_ms FROM "
                                    "e2e_group_waiting WHERE conv = ? AND sender = ? AND device = "
                                    "? AND chain_id = ? ORDER BY seq"));
      st.bind(1, m.conv).bind(2, m.from).bind(3, sender_device).bind_blob(4, chain_id);
      for (;;) {
        PARLEY_ASSIGN_OR_RETURN(row, st.step());
        if (!row) break;
        waiting.push_back({st.column_int64(0), st.column_int64(1), st.column_int64(4),
                           st.column_text(2), st.column_text(3)});
      }
    }
    for (const auto& w : waiting) {
      auto wg = GroupBody::decode(w.body);
      auto plain = wg.ok() ? receiver.decrypt(wg->message,
                                              group_ad(m.conv, m.from,
                                                       static_cast<std::uint64_t>(sender_device)))
                           : Result<crypto::SecretBytes>(wg.error());
      auto in = plain.ok() ? inner_of(plain->view()) : Result<wire::Message>(plain.error());
      if (in.ok() && in->root().str_or("group", "", 128).value() == m.conv) {
        StoredMessage r;
        r.conv = m.conv;
        r.cseq = w.cseq;
        r.msg_id = w.msg_id;
        r.from = m.from;
        r.to = m.conv;
        r.body = in->root().bin("text", 1u << 24).value_or(std::string());
        r.sent_ms = w.sent_ms;
        r.status = "received";
        PARLEY_ASSIGN_OR_RETURN(
            up, profile_.db().prepare("UPDATE messages SET body = ?, e2e = 'ok' WHERE conv = ? "
                                      "AND cseq = ? AND msg_id = ?"));
        PARLEY_TRY(up.bind_blob(1, r.body).bind(2, r.conv).bind(3, r.cseq).bind(4, r.msg_id).run());
        reopened.push_back(std::move(r));
      }
      PARLEY_ASSIGN_OR_RETURN(del,
                              profile_.db().prepare("DELETE FROM e2e_group_waiting WHERE seq = ?"));
      PARLEY_TRY(del.bind(1, w.seq).run());
    }
  }
  PARLEY_ASSIGN_OR_RETURN(
      st, profile_.db().prepare("INSERT INTO e2e_group_receivers(conv, sender, device, "
                                "chain_id, state) VALUES(?, ?, ?, ?, ?) ON CONFLICT DO "
                                "UPDATE SET state = excluded.state"));
  return st.bind(1, m.conv)
      .bind(2, m.from)
      .bind(3, sender_device)
      .bind_blob(4, chain_id)
      .bind_blob(5, receiver.serialize().view())
      .run();
}

}  // namespace parley::client
