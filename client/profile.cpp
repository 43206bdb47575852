#include "parley/client/profile.h"

#include <sys/stat.h>

#include <filesystem>

#include "parley/client/envelope.h"

namespace parley::client {

namespace {

const std::vector<store::Migration>& profile_migrations() {
  static const std::vector<store::Migration> kMigrations = {
      {1, "session, events, history", R"sql(
CREATE TABLE kv(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE events(seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, at_ms INTEGER NOT NULL);
CREATE TABLE messages(
  conv TEXT NOT NULL, cseq INTEGER NOT NULL, msg_id TEXT NOT NULL, sender TEXT NOT NULL,
  recipient TEXT NOT NULL, body BLOB NOT NULL, sent_ms INTEGER NOT NULL, status TEXT NOT NULL,
  PRIMARY KEY(conv, cseq));
)sql"},
      {2, "end-to-end keys, sessions, pending messages", R"sql(
CREATE TABLE e2e_self(key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE e2e_prekeys(id INTEGER PRIMARY KEY, kind TEXT NOT NULL, private BLOB NOT NULL,
  created_ms INTEGER NOT NULL);
CREATE TABLE e2e_peers(user TEXT PRIMARY KEY, identity BLOB NOT NULL, state TEXT NOT NULL,
  new_identity BLOB NOT NULL DEFAULT x'', device_list BLOB NOT NULL DEFAULT x'',
  list_version INTEGER NOT NULL DEFAULT 0, first_seen_ms INTEGER NOT NULL);
CREATE TABLE e2e_sessions(user TEXT NOT NULL, device INTEGER NOT NULL, ek BLOB NOT NULL,
  state BLOB NOT NULL, prekey BLOB NOT NULL DEFAULT x'', active_ms INTEGER NOT NULL,
  PRIMARY KEY(user, device, ek));
CREATE TABLE e2e_pending(seq INTEGER PRIMARY KEY, conv TEXT NOT NULL, cseq INTEGER NOT NULL,
  msg_id TEXT NOT NULL, sender TEXT NOT NULL, sender_device INTEGER NOT NULL,
  recipient TEXT NOT NULL, body BLOB NOT NULL, sent_ms INTEGER NOT NULL, at_ms INTEGER NOT NULL);
CREATE TABLE e2e_outbox(msg_id TEXT PRIMARY KEY, peer TEXT NOT NULL, plaintext BLOB NOT NULL,
  envelope BLOB NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE receipt_marks(conv TEXT NOT NULL, cseq INTEGER NOT NULL, status TEXT NOT NULL,
  PRIMARY KEY(conv, cseq, status));
ALTER TABLE messages ADD COLUMN e2e TEXT NOT NULL DEFAULT 'ok';
)sql"},
      {3, "group sender keys", R"sql(
CREATE TABLE e2e_group_chains(conv TEXT PRIMARY KEY, chain BLOB NOT NULL,
  created_ms INTEGER NOT NULL);
CREATE TABLE e2e_group_dist(conv TEXT NOT NULL, chain_id BLOB NOT NULL, user TEXT NOT NULL,
  device INTEGER NOT NULL, PRIMARY KEY(conv, chain_id, user, device));
CREATE TABLE e2e_group_receivers(conv TEXT NOT NULL, sender TEXT NOT NULL, device INTEGER NOT NULL,
  chain_id BLOB NOT NULL, state BLOB NOT NULL, PRIMARY KEY(conv, sender, device, chain_id));
CREATE INDEX messages_by_id ON messages(conv, msg_id);
)sql"},
      {4, "1:1 history in the conversation order", R"sql(
ALTER TABLE messages ADD COLUMN ord_sum INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN ord_actor TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN ord_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE e2e_pending ADD COLUMN ord_sum INTEGER NOT NULL DEFAULT 0;
ALTER TABLE e2e_pending ADD COLUMN ord_actor TEXT NOT NULL DEFAULT '';
ALTER TABLE e2e_pending ADD COLUMN ord_seq INTEGER NOT NULL DEFAULT 0;
)sql"},
      {5, "group key handovers, group messages waiting for a chain", R"sql(
CREATE TABLE e2e_group_handover(conv TEXT NOT NULL, user TEXT NOT NULL, chain_id BLOB NOT NULL,
  dist BLOB NOT NULL, created_ms INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
  next_ms INTEGER NOT NULL DEFAULT 0, covered_by TEXT NOT NULL DEFAULT '',
  PRIMARY KEY(conv, user, chain_id));
CREATE TABLE e2e_group_waiting(seq INTEGER PRIMARY KEY, conv TEXT NOT NULL, cseq INTEGER NOT NULL,
  msg_id TEXT NOT NULL, sender TEXT NOT NULL, device INTEGER NOT NULL, chain_id BLOB NOT NULL,
  body BLOB NOT NULL, sent_ms INTEGER NOT NULL);
CREATE INDEX e2e_group_waiting_by_chain ON e2e_group_waiting(conv, sender, device, chain_id);
)sql"},
  };
  return kMigrations;
}

}  // namespace

Result<std::unique_ptr<Profile>> Profile::open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error("io", "cannot create profile " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  const std::string path = dir + "/profile.db";
  PARLEY_ASSIGN_OR_RETURN(db, store::Database::open(path));
  ::chmod(path.c_str(), 0600);
  PARLEY_TRY(db->migrate(profile_migrations()));
  return std::unique_ptr<Profile>(new Profile(std::move(db)));
}

Result<std::string> Profile::get(const std::string& key) {
  PARLEY_ASSIGN_OR_RETURN(st, db_->prepare("SELECT value FROM kv WHERE key = ?"));
  st.bind(1, key);
  PARLEY_ASSIGN_OR_RETURN(row, st.step());
  return row ? st.column_text(0) : std::string();
}

Status Profile::set(const std::string& key, const std::string& value) {
  PARLEY_ASSIGN_OR_RETURN(
      st, db_->prepare("INSERT INTO kv(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET "
                       "value = excluded.value"));
  return st.bind(1, key).bind(2, value).run();
}

Status Profile::clear_session() {
  PARLEY_ASSIGN_OR_RETURN(st, db_->prepare("DELETE FROM kv WHERE key IN ('token', 'device_id')"));
  return st.run();
}

Result<bool> Profile::store_event(const wire::View& ev, const std::string& me) {
  PARLEY_ASSIGN_OR_RETURN(seq, ev.uint("seq"));
  PARLEY_ASSIGN_OR_RETURN(kind, ev.str("kind"));
  {
    PARLEY_ASSIGN_OR_RETURN(st, db_->prepare("INSERT INTO events(seq, kind, at_ms) VALUES(?, ?, ?) "
                                             "ON CONFLICT(seq) DO NOTHING"));
    PARLEY_TRY(st.bind(1, static_cast<std::int64_t>(seq))
                   .bind(2, kind)
                   .bind(3, static_cast<std::int64_t>(ev.uint_or("at_ms", 0).value()))
                   .run());
    if (db_->changes() == 0) return false;
  }
  if (kind == "msg" && ev.has("conv")) {
    // Bodies are end-to-end ciphertext: kept here until E2e::process_pending opens them.
    std::int64_t ord_sum = 0, ord_seq = 0;
    std::string ord_actor;
    if (ev.has("ord")) {
      PARLEY_ASSIGN_OR_RETURN(ord, ev.array("ord"));
      if (ord.size() != 3) return make_error("bad_request", "'ord' must have three entries");
      PARLEY_ASSIGN_OR_RETURN(sum, ord[0].as_uint());
      PARLEY_ASSIGN_OR_RETURN(actor, ord[1].as_str(300));
      PARLEY_ASSIGN_OR_RETURN(oseq, ord[2].as_uint());
      // A node sends sums below 2^53 (spec/ordering.md section 2); a larger one would wrap to
      // the front of the order here, so it is kept in arrival order instead.
      if (sum < (std::uint64_t{1} << 53) && oseq < (std::uint64_t{1} << 53)) {
        ord_sum = static_cast<std::int64_t>(sum);
        ord_actor = std::move(actor);
        ord_seq = static_cast<std::int64_t>(oseq);
      }
    }
    PARLEY_ASSIGN_OR_RETURN(
        st, db_->prepare("INSERT INTO e2e_pending(seq, conv, cseq, msg_id, sender, sender_device, "
                         "recipient, body, sent_ms, at_ms, ord_sum, ord_actor, ord_seq) VALUES(?, "
                         "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(seq) DO NOTHING"));
    PARLEY_TRY(st.bind(1, static_cast<std::int64_t>(seq))
                   .bind(2, *ev.str("conv"))
                   .bind(3, static_cast<std::int64_t>(*ev.uint("cseq")))
                   .bind(4, *ev.str("msg_id"))
                   .bind(5, *ev.str("from"))
                   .bind(6, static_cast<std::int64_t>(ev.uint_or("from_device", 0).value()))
                   .bind(7, *ev.str("to"))
                   .bind_blob(8, *ev.bin("body", 1u << 24))
                   .bind(9, static_cast<std::int64_t>(*ev.uint("sent_ms")))
                   .bind(10, static_cast<std::int64_t>(ev.uint_or("at_ms", 0).value()))
                   .bind(11, ord_sum)
                   .bind(12, ord_actor)
                   .bind(13, ord_seq)
                   .run());
  } else if (kind == "gev" && ev.has("event")) {
    // A group event; the body of a message, edit or reaction is a group body (crypto.md 8a, its
    // sender device is in it) and waits for E2e::process_pending too. Other kinds are read from
    // the node.
    PARLEY_ASSIGN_OR_RETURN(e, ev.map("event"));
    // Messages, edits and reactions carry end-to-end content; the other kinds do not.
    const std::string ekind = e.str_or("kind", "").value();
    if (ekind != "message" && ekind != "edit" && ekind != "reaction") return true;
    PARLEY_ASSIGN_OR_RETURN(body, e.bin("body", 1u << 24));
    const auto g = GroupBody::decode(body);
    PARLEY_ASSIGN_OR_RETURN(conv, ev.str("conv", 128));
    PARLEY_ASSIGN_OR_RETURN(
        st, db_->prepare("INSERT INTO e2e_pending(seq, conv, cseq, msg_id, sender, sender_device, "
                         "recipient, body, sent_ms, at_ms) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                         "ON CONFLICT(seq) DO NOTHING"));
    PARLEY_TRY(st.bind(1, static_cast<std::int64_t>(seq))
                   .bind(2, conv)
                   .bind(3, static_cast<std::int64_t>(ev.uint_or("pos", 0).value() + 1))
                   .bind(4, *e.str("id", 64))
                   .bind(5, *e.str("author", 320))
                   .bind(6, static_cast<std::int64_t>(g.ok() ? g->sender_device : 0))
                   .bind(7, conv)
                   .bind_blob(8, body)
                   .bind(9, e.sint("wall_ms").value_or(0))
                   .bind(10, static_cast<std::int64_t>(ev.uint_or("at_ms", 0).value()))
                   .run());
  } else if (kind == "td") {
    // A message from another device of this user; kept for E2e::process_pending when it is for
    // this device (conv "" marks it).
    PARLEY_ASSIGN_OR_RETURN(mine, get("device_id"));
    if (mine.empty() || std::to_string(ev.uint_or("to_device", 0).value()) != mine) return true;
    PARLEY_ASSIGN_OR_RETURN(
        st, db_->prepare("INSERT INTO e2e_pending(seq, conv, cseq, msg_id, sender, sender_device, "
                         "recipient, body, sent_ms, at_ms) VALUES(?, '', 0, ?, ?, ?, ?, ?, ?, ?) "
                         "ON CONFLICT(seq) DO NOTHING"));
    const auto at = static_cast<std::int64_t>(ev.uint_or("at_ms", 0).value());
    PARLEY_TRY(st.bind(1, static_cast<std::int64_t>(seq))
                   .bind(2, ev.str_or("td_id", "", 64).value())
                   .bind(3, me)
                   .bind(4, static_cast<std::int64_t>(ev.uint_or("from_device", 0).value()))
                   .bind(5, me)
                   .bind_blob(6, ev.bin("body", 1u << 24).value_or(std::string()))
                   .bind(7, at)
                   .bind(8, at)
                   .run());
  } else if (kind == "receipt") {
    PARLEY_ASSIGN_OR_RETURN(conv, ev.str("conv"));
    PARLEY_ASSIGN_OR_RETURN(status, ev.str("status"));
    if (status == "delivered") {
      PARLEY_ASSIGN_OR_RETURN(
          st, db_->prepare("UPDATE messages SET status = 'delivered' WHERE conv = ? AND cseq = ? "
                           "AND status = 'sent'"));
      PARLEY_TRY(st.bind(1, conv).bind(2, static_cast<std::int64_t>(*ev.uint("cseq"))).run());
      PARLEY_TRY(mark_receipt(conv, static_cast<std::int64_t>(*ev.uint("cseq")), "delivered"));
    } else if (status == "read") {
      PARLEY_ASSIGN_OR_RETURN(
          st, db_->prepare("UPDATE messages SET status = 'read' WHERE conv = ? AND cseq <= ? AND "
                           "sender = ?"));
      PARLEY_TRY(
          st.bind(1, conv).bind(2, static_cast<std::int64_t>(*ev.uint("upto"))).bind(3, me).run());
      PARLEY_TRY(mark_receipt(conv, static_cast<std::int64_t>(*ev.uint("upto")), "read"));
    }
  }
  return true;
}

// Receipts can arrive before the message they name has been decrypted; the mark lets
// add_message give it the right status then.
Status Profile::mark_receipt(const std::string& conv, std::int64_t cseq,
                             const std::string& status) {
  PARLEY_ASSIGN_OR_RETURN(
      st, db_->prepare("INSERT INTO receipt_marks(conv, cseq, status) VALUES(?, ?, ?) "
                       "ON CONFLICT DO NOTHING"));
  return st.bind(1, conv).bind(2, cseq).bind(3, status).run();
}

Status Profile::add_message(const StoredMessage& m, const std::string& e2e) {
  std::string status = m.status;
  if (status == "sent") {
    PARLEY_ASSIGN_OR_RETURN(
        st, db_->prepare("SELECT (SELECT count(*) FROM receipt_marks WHERE conv = ?1 AND status = "
                         "'read' AND cseq >= ?2), (SELECT count(*) FROM receipt_marks WHERE conv "
                         "= ?1 AND status = 'delivered' AND cseq = ?2)"));
    st.bind(1, m.conv).bind(2, m.cseq);
    PARLEY_TRY(st.step());
    if (st.column_int64(0) > 0) {
      status = "read";
    } else if (st.column_int64(1) > 0) {
      status = "delivered";
    }
  }
  PARLEY_ASSIGN_OR_RETURN(
      st, db_->prepare("INSERT INTO messages(conv, cseq, msg_id, sender, recipient, body, sent_ms, "
                       "status, e2e, ord_sum, ord_actor, ord_seq) VALUES(?, ?, ?, ?, ?, ?, ?, ?, "
                       "?, ?, ?, ?) ON CONFLICT(conv, cseq) DO NOTHING"));
  return st.bind(1, m.conv)
      .bind(2, m.cseq)
      .bind(3, m.msg_id)
      .bind(4, m.from)
      .bind(5, m.to)
      .bind_blob(6, m.body)
      .bind(7, m.sent_ms)
      .bind(8, status)
      .bind(9, e2e)
      .bind(10, m.ord_sum)
      .bind(11, m.ord_actor)
      .bind(12, m.ord_seq)
      .run();
}

Result<std::vector<StoredMessage>> Profile::history(const std::string& conv, int limit) {
  PARLEY_ASSIGN_OR_RETURN(
      st,
      db_->prepare("SELECT conv, cseq, msg_id, sender, recipient, body, sent_ms, status, e2e FROM "
                   "(SELECT * FROM messages WHERE conv = ? ORDER BY ord_sum DESC, ord_actor "
                   "DESC, ord_seq DESC, cseq DESC LIMIT ?) ORDER BY ord_sum, ord_actor, ord_seq, "
                   "cseq"));
  st.bind(1, conv).bind(2, std::int64_t{limit});
  std::vector<StoredMessage> out;
  for (;;) {
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) break;
    out.push_back({st.column_text(0), st.column_int64(1), st.column_text(2), st.column_text(3),
                   st.column_text(4), st.column_text(5), st.column_int64(6), st.column_text(7),
                   st.column_text(8), 0, "", 0});
  }
  return out;
}

Result<std::optional<StoredMessage>> Profile::find_message(const std::string& conv,
                                                           std::int64_t cseq) {
  PARLEY_ASSIGN_OR_RETURN(
      st, db_->prepare("SELECT conv, cseq, msg_id, sender, recipient, body, sent_ms, status FROM "
                       "messages WHERE conv = ? AND cseq = ?"));
  st.bind(1, conv).bind(2, cseq);
  PARLEY_ASSIGN_OR_RETURN(row, st.step());
  if (!row) return std::optional<StoredMessage>();
  return std::optional<StoredMessage>(StoredMessage{
      st.column_text(0), st.column_int64(1), st.column_text(2), st.column_text(3),
      st.column_text(4), st.column_text(5), st.column_int64(6), st.column_text(7), "ok", 0, "", 0});
}

Result<std::optional<StoredMessage>> Profile::find_by_id(const std::string& conv,
                                                         const std::string& msg_id) {
  PARLEY_ASSIGN_OR_RETURN(
      st, db_->prepare("SELECT conv, cseq, msg_id, sender, recipient, body, sent_ms, status, e2e "
                       "FROM messages WHERE conv = ? AND msg_id = ?"));
  st.bind(1, conv).bind(2, msg_id);
  PARLEY_ASSIGN_OR_RETURN(row, st.step());
  if (!row) return std::optional<StoredMessage>();
  return std::optional<StoredMessage>(
      StoredMessage{st.column_text(0), st.column_int64(1), st.column_text(2), st.column_text(3),
                    st.column_text(4), st.column_text(5), st.column_int64(6), st.column_text(7),
                    st.column_text(8), 0, "", 0});
}

}  // namespace parley::client
