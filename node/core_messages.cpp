// 1:1 messaging: send, acknowledgements, read markers, history and the conversation list.
#include <tuple>

#include "core_internal.h"
#include "parley/address.h"

namespace parley::node {
namespace {

constexpr std::size_t kMaxMsgId = 64;

}  // namespace

Status Core::do_send(Conn& c, wire::View req, wire::MapWriter& out) {
  PARLEY_ASSIGN_OR_RETURN(msg_id, req.str("msg_id", kMaxMsgId));
  if (msg_id.empty()) return make_error("bad_request", "msg_id must not be empty");
  PARLEY_ASSIGN_OR_RETURN(body, req.bin("body", config_.max_body_bytes));

  // Resolve the peer: by address ("to") or by an existing conversation ("conv").
  std::string peer;
  if (req.has("to")) {
    PARLEY_ASSIGN_OR_RETURN(to, req.str("to", 320));
    PARLEY_ASSIGN_OR_RETURN(a, wire::parse_address(to));
    peer = a.str();
  } else if (req.has("conv")) {
    PARLEY_ASSIGN_OR_RETURN(conv, req.str("conv", 128));
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("SELECT peer FROM conv_members WHERE user_id = ? AND conv_id = ?"));
    st.bind(1, c.user_id).bind(2, conv);
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) return make_error("not_found", "no conversation " + conv);
    peer = st.column_text(0);
  } else {
    return make_error("bad_request", "send needs 'to' or 'conv'");
  }
  if (peer == c.address) return make_error("bad_request", "cannot send a message to yourself");
  const std::string conv = wire::dm_conversation_id(c.address, peer);

  // Idempotency: the same (sender, msg_id) answers with what was stored the first time.
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("SELECT conv_id, cseq, sent_ms, recipient, body FROM messages "
                        "WHERE sender = ? AND msg_id = ?"));
    st.bind(1, c.address).bind(2, msg_id);
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (row) {
      if (st.column_text(3) != peer || st.column_text(4) != body) {
        return make_error("conflict", "msg_id " + msg_id + " was already used for another message");
      }
      out.add("conv", st.column_text(0))
          .add("cseq", st.column_int64(1))
          .add("sent_ms", st.column_int64(2))
          .add("msg_id", msg_id)
          .add("duplicate", true);
      return ok_status();
    }
  }

  const bool remote = !is_local(peer);
  // Refused before it costs a send token: nothing is queued for a node outside the allowlist.
  if (remote) PARLEY_TRY(check_federates_with(peer));
  // A resent duplicate (above) costs nothing; a new message takes a send token.
  PARLEY_TRY(take_send_token(c));
  UserRow recipient;
  if (!remote) {
    PARLEY_ASSIGN_OR_RETURN(r, local_user_counted(c, peer));
    recipient = std::move(r);
  }
  if (remote && config_.direct_messages == DirectMessagePolicy::kOrganization) {
    return make_error("not_allowed", "this node allows 1:1 messages within the organization only");
  }
  if (config_.direct_messages == DirectMessagePolicy::kFriends) {
    PARLEY_ASSIGN_OR_RETURN(rel, relation(c.user_id, peer));
    if (rel != "friend") {
      return make_error("not_allowed", "this node allows 1:1 messages between friends only; send " +
                                           peer + " a friend request first");
    }
  }
  // Blocks are enforced by the recipient's home node; for a remote peer that is their node.
  std::string their_view;
  if (!remote) {
    PARLEY_ASSIGN_OR_RETURN(v, relation(recipient.id, c.address));
    their_view = std::move(v);
  }
  const bool dropped = their_view == "blocked";
  const std::int64_t now = clock_.now_ms();

  PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(db_));
  PARLEY_ASSIGN_OR_RETURN(order, dm_next(conv));
  PARLEY_ASSIGN_OR_RETURN(
      cseq, store_message({conv, c.address, c.device_id, peer, msg_id, body, now, dropped,
                           order.sum, order.actor, static_cast<std::int64_t>(order.seq)}));
  PARLEY_TRY(touch_member(c.user_id, conv, peer, cseq, false));
  PARLEY_TRY(append_event(c.user_id, "msg", conv, cseq, ""));
  if (remote) {
    wire::MapWriter ev;
    ev.add("type", "msg")
        .add("conv", conv)
        .add("msg_id", msg_id)
        .add("from", c.address)
        .add("from_device", c.device_id)
        .add("to", peer)
        .add_bin("body", body)
        .add("sent_ms", now);
    wire::MapWriter clock;
    for (const auto& [actor, seq] : order.clock) clock.add(actor, seq);
    ev.add("clock", clock).add("actor", order.actor);
    PARLEY_TRY(enqueue_remote(peer, ev.finish()));
  } else if (!dropped) {
    PARLEY_TRY(touch_member(recipient.id, conv, c.address, cseq, true));
    PARLEY_TRY(append_event(recipient.id, "msg", conv, cseq, ""));
  }
  PARLEY_TRY(tx.commit());
  bump(&Metrics::messages_in);
  out.add("conv", conv)
      .add("cseq", cseq)
      .add("sent_ms", now)
      .add("msg_id", msg_id)
      .add("duplicate", false);
  return ok_status();
}

Status Core::do_ack(Conn& c, wire::View req, wire::MapWriter& out) {
  PARLEY_ASSIGN_OR_RETURN(upto_u, req.uint("upto"));
  const auto upto = static_cast<std::int64_t>(upto_u);
  std::int64_t cursor = 0, last = 0;
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("SELECT d.cursor, u.stream_seq FROM devices d JOIN users u ON "
                        "u.id = d.user_id WHERE d.id = ?"));
    st.bind(1, c.device_id);
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) return make_error("bad_credentials", "this device was removed");
    cursor = st.column_int64(0);
    last = st.column_int64(1);
  }
  if (upto_u > static_cast<std::uint64_t>(last)) {
    return make_error("bad_request",
                      "ack beyond the end of the stream (" + std::to_string(last) + ")");
  }
  if (upto <= cursor) {
    out.add("cursor", cursor);
    return ok_status();
  }
  // A full or read-only database keeps serving reads: an acknowledgement it cannot store (with its
  // receipts) is answered with the cursor unchanged and `deferred`, and the events come again on
  // the next connection (clients drop them by seq).
  auto stored = ack_and_receipts(c, cursor, upto);
  if (!stored.ok() && store::write_refused(stored.error())) {
    restart_broken_batch();
    out.add("cursor", cursor).add("deferred", true);
    return ok_status();
  }
  PARLEY_TRY(stored);
  out.add("cursor", upto);
  if (batching_) {
    // The batch's commit may still fail: then the answer is the same as for a refused write.
    wire::MapWriter w;
    w.add("t", "re")
        .add("id", req.uint_or("id", 0).value())
        .add("ok", true)
        .add("cursor", cursor)
        .add("deferred", true);
    if_not_stored_ = w.finish();
  }
  return ok_status();
}

Status Core::ack_and_receipts(Conn& c, std::int64_t cursor, std::int64_t upto) {
  const std::int64_t now = clock_.now_ms();
  PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(db_));
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("UPDATE devices SET cursor = ?, last_seen_ms = ? WHERE id = ?"));
    PARLEY_TRY(st.bind(1, upto).bind(2, now).bind(3, c.device_id).run());
  }
  // First acknowledgement of a message by any recipient device: tell the sender it arrived.
  struct Delivered {
    std::string conv, sender, msg_id;
    std::int64_t cseq;
  };
  std::vector<Delivered> delivered;
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("SELECT m.conv_id, m.cseq, m.sender, m.msg_id FROM stream s JOIN messages "
                        "m ON m.conv_id = s.conv_id AND m.cseq = s.cseq WHERE s.user_id = ? AND "
                        "s.seq > ? AND s.seq <= ? AND s.kind = 'msg' AND m.sender != ? AND "
                        "m.delivered_ms IS NULL ORDER BY s.seq"));
    st.bind(1, c.user_id).bind(2, cursor).bind(3, upto).bind(4, c.address);
    for (;;) {
      PARLEY_ASSIGN_OR_RETURN(row, st.step());
      if (!row) break;
      delivered.push_back(
          {st.column_text(0), st.column_text(2), st.column_text(3), st.column_int64(1)});
    }
  }
  for (const auto& d : delivered) {
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("UPDATE messages SET delivered_ms = ? WHERE conv_id = ? AND cseq = ?"));
    PARLEY_TRY(st.bind(1, now).bind(2, d.conv).bind(3, d.cseq).run());
    if (!is_local(d.sender)) {  // the sender's node relays it to their devices
      wire::MapWriter ev;
      ev.add("type", "receipt")
          .add("status", "delivered")
          .add("from", c.address)
          .add("to", d.sender)
          .add("msg_id", d.msg_id);
      PARLEY_TRY(enqueue_remote(d.sender, ev.finish()));
      continue;
    }
    auto sender = local_user_for(d.sender);
    if (!sender.ok()) continue;  // the sender was deleted
    wire::MapWriter p;
    p.add("conv", d.conv)
        .add("status", "delivered")
        .add("by", c.address)
        .add("msg_id", d.msg_id)
        .add("cseq", d.cseq);
    PARLEY_TRY(append_event(sender->id, "receipt", d.conv, 0, p.finish()));
  }
  return tx.commit();
}

Status Core::do_read(Conn& c, wire::View req, wire::MapWriter& out) {
  PARLEY_ASSIGN_OR_RETURN(conv, req.str("conv", 128));
  PARLEY_ASSIGN_OR_RETURN(upto_u, req.uint("upto"));
  std::int64_t read_upto = 0, last = 0, cleared = 0;
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("SELECT read_upto, last_cseq, cleared_upto FROM conv_members "
                        "WHERE user_id = ? AND conv_id = ?"));
    st.bind(1, c.user_id).bind(2, conv);
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) return make_error("not_found", "no conversation " + conv);
    read_upto = st.column_int64(0);
    last = st.column_int64(1);
    cleared = st.column_int64(2);
  }
  const std::int64_t upto = std::min<std::int64_t>(
      static_cast<std::int64_t>(std::min<std::uint64_t>(upto_u, INT64_MAX)), last);
  if (upto <= read_upto) {
    out.add("read_upto", read_upto);
    return ok_status();
  }
  const std::int64_t now = clock_.now_ms();
  PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(db_));
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("UPDATE conv_members SET read_upto = ?1, unread = (SELECT count(*) FROM "
                        "messages WHERE conv_id = ?2 AND cseq > ?1 AND cseq > ?4 AND sender != ?3 "
                        "AND dropped = 0) WHERE user_id = ?5 AND conv_id = ?2"));
    PARLEY_TRY(st.bind(1, upto)
                   .bind(2, conv)
                   .bind(3, c.address)
                   .bind(4, cleared)
                   .bind(5, c.user_id)
                   .run());
  }
  // Per sender: the newest message now read (SQLite takes msg_id from the max(cseq) row).
  std::vector<std::tuple<std::string, std::int64_t, std::string>> senders;
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare(
                "SELECT sender, max(cseq), msg_id FROM messages WHERE conv_id = ? AND cseq <= ? "
                "AND sender != ? AND dropped = 0 AND read_ms IS NULL GROUP BY sender"));
    st.bind(1, conv).bind(2, upto).bind(3, c.address);
    for (;;) {
      PARLEY_ASSIGN_OR_RETURN(row, st.step());
      if (!row) break;
      senders.emplace_back(st.column_text(0), st.column_int64(1), st.column_text(2));
    }
  }
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("UPDATE messages SET read_ms = ?, delivered_ms = coalesce(delivered_ms, ?) "
                        "WHERE conv_id = ? AND cseq <= ? AND sender != ? AND read_ms IS NULL"));
    PARLEY_TRY(st.bind(1, now).bind(2, now).bind(3, conv).bind(4, upto).bind(5, c.address).run());
  }
  for (const auto& [sender, max_cseq, newest_msg_id] : senders) {
    if (!is_local(sender)) {
      wire::MapWriter ev;
      ev.add("type", "receipt")
          .add("status", "read")
          .add("from", c.address)
          .add("to", sender)
          .add("msg_id", newest_msg_id);
      PARLEY_TRY(enqueue_remote(sender, ev.finish()));
      continue;
    }
    auto s = local_user_for(sender);
    if (!s.ok()) continue;
    wire::MapWriter p;
    p.add("conv", conv).add("status", "read").add("by", c.address).add("upto", max_cseq);
    PARLEY_TRY(append_event(s->id, "receipt", conv, 0, p.finish()));
  }
  PARLEY_TRY(conv_event(c.user_id, conv));
  PARLEY_TRY(tx.commit());
  out.add("read_upto", upto);
  return ok_status();
}

Status Core::do_history(Conn& c, wire::View req, wire::MapWriter& out) {
  PARLEY_ASSIGN_OR_RETURN(conv, req.str("conv", 128));
  PARLEY_ASSIGN_OR_RETURN(before, req.uint_or("before", INT64_MAX));
  PARLEY_ASSIGN_OR_RETURN(limit, req.uint_or("limit", 50));
  if (limit < 1 || limit > 200) return make_error("bad_request", "limit must be 1 to 200");
  std::int64_t cleared = 0;
  {
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("SELECT cleared_upto FROM conv_members WHERE user_id = ? AND conv_id = ?"));
    st.bind(1, c.user_id).bind(2, conv);
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) return make_error("not_found", "no conversation " + conv);
    cleared = st.column_int64(0);
  }
  // In the conversation's total order (spec/ordering.md section 7); `before` names a message by
  // its cseq and asks for those that sort before it.
  std::int64_t b_sum = INT64_MAX, b_seq = INT64_MAX;
  std::string b_actor;
  if (before < static_cast<std::uint64_t>(INT64_MAX)) {
    PARLEY_ASSIGN_OR_RETURN(
        at, db_.prepare("SELECT ord_sum, ord_actor, ord_seq FROM messages WHERE conv_id = ? AND "
                        "cseq = ?"));
    at.bind(1, conv).bind(2, static_cast<std::int64_t>(before));
    PARLEY_ASSIGN_OR_RETURN(row, at.step());
    if (!row)
      return make_error("not_found", "no message " + std::to_string(before) + " in " + conv);
    b_sum = at.column_int64(0);
    b_actor = at.column_text(1);
    b_seq = at.column_int64(2);
  }
  PARLEY_ASSIGN_OR_RETURN(
      st, db_.prepare("SELECT cseq, msg_id, sender, sender_device, recipient, body, sent_ms, "
                      "delivered_ms, read_ms, ord_sum, ord_actor, ord_seq FROM messages WHERE "
                      "conv_id = ? AND (ord_sum, ord_actor, ord_seq) < (?, ?, ?) AND cseq > ? AND "
                      "(dropped = 0 OR sender = ?) ORDER BY ord_sum DESC, ord_actor DESC, "
                      "ord_seq DESC LIMIT ?"));
  st.bind(1, conv)
      .bind(2, b_sum)
      .bind(3, b_actor)
      .bind(4, b_seq)
      .bind(5, cleared)
      .bind(6, c.address)
      .bind(7, static_cast<std::int64_t>(limit + 1));
  std::vector<wire::MapWriter> rows;
  std::size_t bytes = 0;
  bool cut = false;  // stopped at kMaxAnswerBytes
  for (;;) {
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) break;
    if (rows.size() == limit) {  // the one beyond the page: only tells that there is more
      rows.emplace_back();
      break;
    }
    wire::MapWriter m;
    const std::string sender = st.column_text(2);
    m.add("conv", conv)
        .add("cseq", st.column_int64(0))
        .add("msg_id", st.column_text(1))
        .add("from", sender)
        .add("from_device", st.column_int64(3))
        .add("to", st.column_text(4))
        .add_bin("body", st.column_text(5))
        .add("sent_ms", st.column_int64(6));
    wire::ArrayWriter ord;
    ord.push(static_cast<std::uint64_t>(st.column_int64(9)))
        .push(st.column_text(10))
        .push(static_cast<std::uint64_t>(st.column_int64(11)));
    m.add("ord", ord);
    if (sender == c.address) {
      m.add("status", !st.column_is_null(8)   ? "read"
                      : !st.column_is_null(7) ? "delivered"
                                              : "sent");
    }
    if (!rows.empty() && bytes + m.bytes() > kMaxAnswerBytes) {
      cut = true;
      break;
    }
    bytes += m.bytes();
    rows.push_back(std::move(m));
  }
  const bool more = cut || rows.size() > limit;
  if (rows.size() > limit) rows.pop_back();
  wire::ArrayWriter arr;
  for (auto it = rows.rbegin(); it != rows.rend(); ++it) arr.push(*it);
  out.add("messages", arr).add("more", more);
  return ok_status();
}

Status Core::do_convs(Conn& c, wire::View req, wire::MapWriter& out) {
  PARLEY_ASSIGN_OR_RETURN(
      st, db_.prepare("SELECT conv_id, peer, last_cseq, last_ms, unread, pinned, hidden, "
                      "read_upto, cleared_upto FROM conv_members WHERE user_id = ? "
                      "ORDER BY pinned DESC, last_ms DESC, conv_id LIMIT 4000"));
  st.bind(1, c.user_id);
  wire::ArrayWriter arr;
  for (;;) {
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) break;
    wire::MapWriter m;
    m.add("conv", st.column_text(0))
        .add("peer", st.column_text(1))
        .add("last_cseq", st.column_int64(2))
        .add("last_ms", st.column_int64(3))
        .add("unread", st.column_int64(4))
        .add("pinned", st.column_int64(5) != 0)
        .add("hidden", st.column_int64(6) != 0)
        .add("read_upto", st.column_int64(7))
        .add("cleared_upto", st.column_int64(8));
    arr.push(m);
  }
  out.add("convs", arr);
  return ok_status();
}

Status Core::do_conv_view(Conn& c, const std::string& type, wire::View req, wire::MapWriter& out) {
  PARLEY_ASSIGN_OR_RETURN(conv, req.str("conv", 128));
  const char* sql = nullptr;
  bool on = true;
  if (type == "pin" || type == "hide") {
    PARLEY_ASSIGN_OR_RETURN(flag, req.boolean_or("on", true));
    on = flag;
    sql = type == "pin" ? "UPDATE conv_members SET pinned = ? WHERE user_id = ? AND conv_id = ?"
                        : "UPDATE conv_members SET hidden = ? WHERE user_id = ? AND conv_id = ?";
  } else {
    sql =
        "UPDATE conv_members SET hidden = 1, unread = 0, cleared_upto = last_cseq, "
        "read_upto = max(read_upto, last_cseq) WHERE user_id = ? AND conv_id = ?";
  }
  PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(db_));
  PARLEY_ASSIGN_OR_RETURN(st, db_.prepare(sql));
  if (type == "clear") {
    st.bind(1, c.user_id).bind(2, conv);
  } else {
    st.bind(1, std::int64_t{on ? 1 : 0}).bind(2, c.user_id).bind(3, conv);
  }
  PARLEY_TRY(st.run());
  if (db_.changes() == 0) return make_error("not_found", "no conversation " + conv);
  PARLEY_TRY(conv_event(c.user_id, conv));
  PARLEY_TRY(tx.commit());
  return ok_status();
}

}  // namespace parley::node
