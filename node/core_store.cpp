// Storage helpers of the core: users, relations and the per-user event streams.
#include "core_internal.h"
#include "parley/address.h"
#include "parley/conv/replica.h"
#include "parley/federation/peers.h"
#include "parley/node/conv_store.h"

namespace parley::node {

Result<std::optional<Core::UserRow>> Core::find_user(const std::string& name) {
  PARLEY_ASSIGN_OR_RETURN(
      st, db_.prepare("SELECT id, name, password_hash, suspended, stream_seq, deactivated_ms "
                      "FROM users WHERE name = ?"));
  st.bind(1, name);
  PARLEY_ASSIGN_OR_RETURN(row, st.step());
  if (!row) return std::optional<UserRow>();
  UserRow u;
  u.id = st.column_int64(0);
  u.name = st.column_text(1);
  u.password_hash = st.column_text(2);
  u.suspended = st.column_int64(3) != 0;
  u.stream_seq = st.column_int64(4);
  u.deactivated = st.column_int64(5) != 0;
  return std::optional<UserRow>(std::move(u));
}

Result<Core::UserRow> Core::local_user_for(const std::string& address) {
  PARLEY_ASSIGN_OR_RETURN(a, wire::parse_address(address));
  if (a.domain != config_.name) {
    return make_error("not_found", a.str() +
                                       " is on another node; this node does not federate "
                                       "yet");
  }
  PARLEY_ASSIGN_OR_RETURN(row, find_user(a.local));
  if (!row) return make_error("not_found", "no user " + a.str());
  return std::move(*row);
}

Result<std::int64_t> Core::append_event(std::int64_t user_id, const std::string& kind,
                                        const std::string& conv, std::int64_t cseq,
                                        const std::string& payload) {
  PARLEY_ASSIGN_OR_RETURN(bump,
                          db_.prepare("UPDATE users SET stream_seq = stream_seq + 1 WHERE id = ? "
                                      "RETURNING stream_seq"));
  bump.bind(1, user_id);
  PARLEY_ASSIGN_OR_RETURN(row, bump.step());
  if (!row) return make_error("not_found", "user vanished");
  const std::int64_t seq = bump.column_int64(0);
  PARLEY_TRY(bump.step());  // finish the statement
  PARLEY_ASSIGN_OR_RETURN(
      ins, db_.prepare("INSERT INTO stream(user_id, seq, kind, at_ms, conv_id, cseq, payload) "
                       "VALUES(?, ?, ?, ?, ?, ?, ?)"));
  ins.bind(1, user_id).bind(2, seq).bind(3, kind).bind(4, clock_.now_ms());
  conv.empty() ? ins.bind_null(5) : ins.bind(5, conv);
  cseq ? ins.bind(6, cseq) : ins.bind_null(6);
  payload.empty() ? ins.bind_null(7) : ins.bind_blob(7, payload);
  PARLEY_TRY(ins.run());
  touched_.insert(user_id);
  return seq;
}

bool Core::is_local(const std::string& address) const {
  const auto at = address.rfind('@');
  return at != std::string::npos && address.substr(at + 1) == config_.name;
}

Status Core::check_federates_with(const std::string& address) {
  if (config_.federation_policy != "allowlist") return ok_status();
  PARLEY_ASSIGN_OR_RETURN(a, wire::parse_address(address));
  PARLEY_ASSIGN_OR_RETURN(peer, federation::PeerStore(db_).get(a.domain));
  if (peer && peer->listed) return ok_status();
  return make_error("not_allowed", "this node does not federate with " + a.domain);
}

Status Core::enqueue_remote(const std::string& address, const std::string& payload) {
  PARLEY_ASSIGN_OR_RETURN(a, wire::parse_address(address));
  return enqueue_node(a.domain, payload);
}

Status Core::enqueue_node(const std::string& node, const std::string& payload) {
  PARLEY_ASSIGN_OR_RETURN(
      st, db_.prepare("INSERT INTO fed_outbox(dest, payload, created_ms) VALUES(?, ?, ?)"));
  PARLEY_TRY(st.bind(1, node).bind_blob(2, payload).bind(3, clock_.now_ms()).run());
  outbox_grew_ = true;
  return ok_status();
}

Result<std::int64_t> Core::store_message(const NewMessage& m) {
  const std::int64_t now = clock_.now_ms();
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("INSERT INTO conversations(id, kind, last_cseq, created_ms) "
                        "VALUES(?, 'dm', 0, ?) ON CONFLICT(id) DO NOTHING"));
    PARLEY_TRY(st.bind(1, m.conv).bind(2, now).run());
  }
  std::int64_t cseq = 0;
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("UPDATE conversations SET last_cseq = last_cseq + 1 WHERE id = ? "
                        "RETURNING last_cseq"));
    st.bind(1, m.conv);
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) return make_error("internal", "conversation row missing");
    cseq = st.column_int64(0);
    PARLEY_TRY(st.step());
  }
  PARLEY_ASSIGN_OR_RETURN(
      st, db_.prepare("INSERT INTO messages(conv_id, cseq, sender, sender_device, recipient, "
                      "msg_id, body, sent_ms, dropped, ord_sum, ord_actor, ord_seq) VALUES(?, ?, "
                      "?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  PARLEY_TRY(st.bind(1, m.conv)
                 .bind(2, cseq)
                 .bind(3, m.sender)
                 .bind(4, m.sender_device)
                 .bind(5, m.recipient)
                 .bind(6, m.msg_id)
                 .bind_blob(7, m.body)
                 .bind(8, m.sent_ms)
                 .bind(9, std::int64_t{m.dropped ? 1 : 0})
                 .bind(10, m.ord_sum ? m.ord_sum : cseq)
                 .bind(11, m.ord_actor)
                 .bind(12, m.ord_seq ? m.ord_seq : cseq)
                 .run());
  return cseq;
}

Result<Core::DmOrder> Core::dm_next(const std::string& conv) {
  PARLEY_ASSIGN_OR_RETURN(epoch, convs_->epoch());
  DmOrder o;
  o.actor = config_.name + "#" + std::to_string(epoch);
  {
    PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("SELECT actor, seq FROM dm_clocks WHERE conv_id = ?"));
    st.bind(1, conv);
    for (;;) {
      PARLEY_ASSIGN_OR_RETURN(row, st.step());
      if (!row) break;
      // Entries a clock may not hold (merged before the clock rules of ordering.md section 7:
      // a foreign actor, a value near 2^64) are left out rather than sent back.
      const std::string actor = st.column_text(0);
      const std::int64_t seq = st.column_int64(1);
      if (seq > 0 && static_cast<std::uint64_t>(seq) < conv::kMaxClockSum &&
          conv::parse_actor(actor, nullptr, nullptr)) {
        o.clock[actor] = static_cast<std::uint64_t>(seq);
      }
    }
  }
  o.seq = ++o.clock[o.actor];
  PARLEY_ASSIGN_OR_RETURN(sum, conv::clock_sum(o.clock));
  o.sum = static_cast<std::int64_t>(sum);
  PARLEY_ASSIGN_OR_RETURN(
      up, db_.prepare("INSERT INTO dm_clocks(conv_id, actor, seq) VALUES(?, ?, ?) ON "
                      "CONFLICT(conv_id, actor) DO UPDATE SET seq = excluded.seq"));
  PARLEY_TRY(up.bind(1, conv).bind(2, o.actor).bind(3, static_cast<std::int64_t>(o.seq)).run());
  return o;
}

Status Core::dm_merge(const std::string& conv, const std::map<std::string, std::uint64_t>& clock) {
  for (const auto& [actor, seq] : clock) {
    PARLEY_ASSIGN_OR_RETURN(
        up, db_.prepare("INSERT INTO dm_clocks(conv_id, actor, seq) VALUES(?, ?, ?) ON "
                        "CONFLICT(conv_id, actor) DO UPDATE SET seq = max(seq, excluded.seq)"));
    PARLEY_TRY(up.bind(1, conv).bind(2, actor).bind(3, static_cast<std::int64_t>(seq)).run());
  }
  return ok_status();
}

Status Core::touch_member(std::int64_t user_id, const std::string& conv, const std::string& peer,
                          std::int64_t cseq, bool unread) {
  PARLEY_ASSIGN_OR_RETURN(
      st,
      db_.prepare("INSERT INTO conv_members(user_id, conv_id, peer, last_cseq, last_ms, unread) "
                  "VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(user_id, conv_id) DO UPDATE SET "
                  "last_cseq = ?4, last_ms = ?5, unread = unread + ?6, hidden = 0"));
  return st.bind(1, user_id)
      .bind(2, conv)
      .bind(3, peer)
      .bind(4, cseq)
      .bind(5, clock_.now_ms())
      .bind(6, std::int64_t{unread ? 1 : 0})
      .run();
}

Result<std::string> Core::relation(std::int64_t user_id, const std::string& other) {
  PARLEY_ASSIGN_OR_RETURN(
      st, db_.prepare("SELECT state FROM relations WHERE user_id = ? AND other = ?"));
  st.bind(1, user_id).bind(2, other);
  PARLEY_ASSIGN_OR_RETURN(row, st.step());
  return row ? st.column_text(0) : std::string();
}

Status Core::set_relation(std::int64_t user_id, const std::string& other,
                          const std::string& state) {
  PARLEY_ASSIGN_OR_RETURN(
      st, db_.prepare("INSERT INTO relations(user_id, other, state, since_ms) VALUES(?, ?, ?, ?) "
                      "ON CONFLICT(user_id, other) DO UPDATE SET state = excluded.state, "
                      "since_ms = excluded.since_ms"));
  return st.bind(1, user_id).bind(2, other).bind(3, state).bind(4, clock_.now_ms()).run();
}

Status Core::drop_relation(std::int64_t user_id, const std::string& other) {
  PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("DELETE FROM relations WHERE user_id = ? AND other = ?"));
  return st.bind(1, user_id).bind(2, other).run();
}

Status Core::friend_event(std::int64_t user_id, const std::string& event, const std::string& other,
                          const std::string& by) {
  wire::MapWriter p;
  p.add("event", event).add("user", other).add("by", by);
  return append_event(user_id, "friend", "", 0, p.finish()).ok()
             ? ok_status()
             : make_error("storage", "cannot append a friend event");
}

Status Core::conv_event(std::int64_t user_id, const std::string& conv) {
  PARLEY_ASSIGN_OR_RETURN(
      st, db_.prepare("SELECT pinned, hidden, cleared_upto, read_upto, unread FROM conv_members "
                      "WHERE user_id = ? AND conv_id = ?"));
  st.bind(1, user_id).bind(2, conv);
  PARLEY_ASSIGN_OR_RETURN(row, st.step());
  if (!row) return make_error("not_found", "no conversation " + conv);
  wire::MapWriter p;
  p.add("conv", conv)
      .add("pinned", st.column_int64(0) != 0)
      .add("hidden", st.column_int64(1) != 0)
      .add("cleared_upto", st.column_int64(2))
      .add("read_upto", st.column_int64(3))
      .add("unread", st.column_int64(4));
  const std::string payload = p.finish();
  PARLEY_TRY(st.step());
  auto seq = append_event(user_id, "conv", conv, 0, payload);
  if (!seq.ok()) return seq.take_error();
  return ok_status();
}

Result<int> Core::load_events(std::int64_t user_id, std::int64_t after, int limit, Conn& c) {
  PARLEY_ASSIGN_OR_RETURN(
      st, db_.prepare(
              "SELECT s.seq, s.kind, s.at_ms, s.payload, m.conv_id, m.cseq, m.msg_id, m.sender, "
              "m.sender_device, m.recipient, m.body, m.sent_ms, s.conv_id, s.cseq, ce.bytes, "
              "m.ord_sum, m.ord_actor, m.ord_seq "
              "FROM stream s LEFT JOIN messages m ON s.kind = 'msg' AND m.conv_id = s.conv_id "
              "AND m.cseq = s.cseq LEFT JOIN conv_events ce ON s.kind = 'gev' AND ce.conv_id = "
              "s.conv_id AND ce.pos = s.cseq - 1 WHERE s.user_id = ? AND s.seq > ? ORDER BY "
              "s.seq LIMIT ?"));
  st.bind(1, user_id).bind(2, after).bind(3, std::int64_t{limit});
  int n = 0;
  for (;;) {
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) break;
    const std::int64_t seq = st.column_int64(0);
    const std::string kind = st.column_text(1);
    wire::MapWriter w;
    w.add("t", "ev").add("seq", seq).add("kind", kind).add("at_ms", st.column_int64(2));
    if (kind == "msg") {
      if (st.column_is_null(4)) {
        // The message was removed (its sender was deleted); keep the seq so cursors still move.
        w.add("gone", true);
      } else {
        w.add("conv", st.column_text(4))
            .add("cseq", st.column_int64(5))
            .add("msg_id", st.column_text(6))
            .add("from", st.column_text(7))
            .add("from_device", st.column_int64(8))
            .add("to", st.column_text(9))
            .add_bin("body", st.column_text(10))
            .add("sent_ms", st.column_int64(11));
        wire::ArrayWriter ord;
        ord.push(static_cast<std::uint64_t>(st.column_int64(15)))
            .push(st.column_text(16))
            .push(static_cast<std::uint64_t>(st.column_int64(17)));
        w.add("ord", ord);
      }
    } else if (kind == "gev") {
      // A group event: where it sits in this node's log (cseq - 1) and the event itself.
      auto e = st.column_is_null(14) ? Result<conv::Event>(make_error("not_found", "gone"))
                                     : conv::Event::decode(st.column_text(14));
      w.add("conv", st.column_text(12)).add("pos", st.column_int64(13) - 1);
      if (e.ok()) {
        w.add("event", conv_event_fields(*e));
        if (blocked_content(e->kind)) {  // from a user this user blocks: not to be shown
          PARLEY_ASSIGN_OR_RETURN(state, relation(user_id, e->author));
          if (state == "blocked") w.add("hidden", true);
        }
      } else {
        w.add("gone", true);
      }
    } else if (!st.column_is_null(3)) {
      w.merge_map(st.column_text(3));
    }
    if (kind == "msg" || kind == "gev") bump(&Metrics::deliveries);
    if (batching_ && c.batch_floor < 0) {
      c.batch_floor = c.pushed_upto;
      batch_pushed_.push_back(c.id);
    }
    send_frame(c, w.finish());
    c.pushed_upto = seq;
    ++n;
  }
  return n;
}

}  // namespace parley::node
