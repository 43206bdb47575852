#include "parley/client/profile.h"

#include <sys/stat.h>

#include <filesystem>

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
    PARLEY_ASSIGN_OR_RETURN(from, ev.str("from"));
    PARLEY_ASSIGN_OR_RETURN(
        st, db_->prepare("INSERT INTO messages(conv, cseq, msg_id, sender, recipient, body, "
                         "sent_ms, status) VALUES(?, ?, ?, ?, ?, ?, ?, ?) "
                         "ON CONFLICT(conv, cseq) DO NOTHING"));
    PARLEY_TRY(st.bind(1, *ev.str("conv"))
                   .bind(2, static_cast<std::int64_t>(*ev.uint("cseq")))
                   .bind(3, *ev.str("msg_id"))
                   .bind(4, from)
                   .bind(5, *ev.str("to"))
                   .bind_blob(6, *ev.bin("body", 1u << 24))
                   .bind(7, static_cast<std::int64_t>(*ev.uint("sent_ms")))
                   .bind(8, from == me ? "sent" : "received")
                   .run());
  } else if (kind == "receipt") {
    PARLEY_ASSIGN_OR_RETURN(conv, ev.str("conv"));
    PARLEY_ASSIGN_OR_RETURN(status, ev.str("status"));
    if (status == "delivered") {
      PARLEY_ASSIGN_OR_RETURN(
          st, db_->prepare("UPDATE messages SET status = 'delivered' WHERE conv = ? AND cseq = ? "
                           "AND status = 'sent'"));
      PARLEY_TRY(st.bind(1, conv).bind(2, static_cast<std::int64_t>(*ev.uint("cseq"))).run());
    } else if (status == "read") {
      PARLEY_ASSIGN_OR_RETURN(
          st, db_->prepare("UPDATE messages SET status = 'read' WHERE conv = ? AND cseq <= ? AND "
                           "sender = ?"));
      PARLEY_TRY(
          st.bind(1, conv).bind(2, static_cast<std::int64_t>(*ev.uint("upto"))).bind(3, me).run());
    }
  }
  return true;
}

Result<std::vector<StoredMessage>> Profile::history(const std::string& conv, int limit) {
  PARLEY_ASSIGN_OR_RETURN(
      st, db_->prepare("SELECT conv, cseq, msg_id, sender, recipient, body, sent_ms, status FROM "
                       "(SELECT * FROM messages WHERE conv = ? ORDER BY cseq DESC LIMIT ?) "
                       "ORDER BY cseq"));
  st.bind(1, conv).bind(2, std::int64_t{limit});
  std::vector<StoredMessage> out;
  for (;;) {
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) break;
    out.push_back({st.column_text(0), st.column_int64(1), st.column_text(2), st.column_text(3),
                   st.column_text(4), st.column_text(5), st.column_int64(6), st.column_text(7)});
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
  return std::optional<StoredMessage>(
      StoredMessage{st.column_text(0), st.column_int64(1), st.column_text(2), st.column_text(3),
                    st.column_text(4), st.column_text(5), st.column_int64(6), st.column_text(7)});
}

}  // namespace parley::client
