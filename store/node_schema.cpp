#include "parley/store/node_schema.h"

namespace parley::store {

const std::vector<Migration>& node_migrations() {
  static const std::vector<Migration> kMigrations = {
      {1, "accounts, relations, conversations, messages, streams", R"sql(
CREATE TABLE node_meta(
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE users(
  id            INTEGER PRIMARY KEY,
  name          TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  suspended     INTEGER NOT NULL DEFAULT 0,
  created_ms    INTEGER NOT NULL,
  stream_seq    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE devices(
  id           INTEGER PRIMARY KEY,
  user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  label        TEXT NOT NULL,
  token_hash   TEXT UNIQUE,
  cursor       INTEGER NOT NULL DEFAULT 0,
  created_ms   INTEGER NOT NULL,
  last_seen_ms INTEGER NOT NULL
);
CREATE INDEX devices_by_user ON devices(user_id);
CREATE TABLE relations(
  user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  other    TEXT NOT NULL,
  state    TEXT NOT NULL CHECK (state IN ('friend', 'outgoing', 'incoming', 'blocked')),
  since_ms INTEGER NOT NULL,
  PRIMARY KEY(user_id, other)
) WITHOUT ROWID;
CREATE TABLE conversations(
  id         TEXT PRIMARY KEY,
  kind       TEXT NOT NULL,
  last_cseq  INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE conv_members(
  user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  conv_id      TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  peer         TEXT NOT NULL,
  last_cseq    INTEGER NOT NULL DEFAULT 0,
  last_ms      INTEGER NOT NULL DEFAULT 0,
  read_upto    INTEGER NOT NULL DEFAULT 0,
  cleared_upto INTEGER NOT NULL DEFAULT 0,
  unread       INTEGER NOT NULL DEFAULT 0,
  pinned       INTEGER NOT NULL DEFAULT 0,
  hidden       INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(user_id, conv_id)
) WITHOUT ROWID;
CREATE TABLE messages(
  conv_id       TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  cseq          INTEGER NOT NULL,
  sender        TEXT NOT NULL,
  sender_device INTEGER NOT NULL,
  recipient     TEXT NOT NULL,
  msg_id        TEXT NOT NULL,
  body          BLOB NOT NULL,
  sent_ms       INTEGER NOT NULL,
  delivered_ms  INTEGER,
  read_ms       INTEGER,
  dropped       INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(conv_id, cseq),
  UNIQUE(sender, msg_id)
) WITHOUT ROWID;
CREATE TABLE stream(
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  seq     INTEGER NOT NULL,
  kind    TEXT NOT NULL,
  at_ms   INTEGER NOT NULL,
  conv_id TEXT,
  cseq    INTEGER,
  payload BLOB,
  PRIMARY KEY(user_id, seq)
) WITHOUT ROWID;
)sql"},
      {2, "federation peers, outbound queue, received transactions", R"sql(
CREATE TABLE peers(
  name            TEXT PRIMARY KEY,
  url             TEXT NOT NULL,
  public_key      TEXT NOT NULL DEFAULT '',
  state           TEXT NOT NULL DEFAULT 'allowed' CHECK (state IN ('allowed', 'denied')),
  added_ms        INTEGER NOT NULL,
  last_success_ms INTEGER NOT NULL DEFAULT 0,
  last_error      TEXT NOT NULL DEFAULT '',
  failures        INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE fed_outbox(
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  dest       TEXT NOT NULL,
  payload    BLOB NOT NULL,
  created_ms INTEGER NOT NULL
);
CREATE INDEX fed_outbox_by_dest ON fed_outbox(dest, id);
CREATE TABLE fed_inbound(
  origin       TEXT PRIMARY KEY,
  applied_upto INTEGER NOT NULL,
  updated_ms   INTEGER NOT NULL
) WITHOUT ROWID;
)sql"},
      {3, "node key history", R"sql(
CREATE TABLE node_keys(
  public_key BLOB PRIMARY KEY,
  from_ms    INTEGER NOT NULL,
  until_ms   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
)sql"},
      {4, "key endorsements, discovered peers", R"sql(
ALTER TABLE node_keys ADD COLUMN prev_sig BLOB NOT NULL DEFAULT x'';
ALTER TABLE peers ADD COLUMN discovered_ms INTEGER NOT NULL DEFAULT 0;
)sql"},
      {5, "directory and end-to-end key directory", R"sql(
ALTER TABLE users ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
CREATE TABLE user_keys(
  user_id      INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
  identity     BLOB NOT NULL,
  device_list  BLOB NOT NULL DEFAULT x'',
  list_version INTEGER NOT NULL DEFAULT 0,
  updated_ms   INTEGER NOT NULL
);
CREATE TABLE device_keys(
  device_id     INTEGER PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
  user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  cert          BLOB NOT NULL DEFAULT x'',
  signed_prekey BLOB NOT NULL DEFAULT x'',
  max_key_id    INTEGER NOT NULL DEFAULT 0,
  updated_ms    INTEGER NOT NULL
);
CREATE INDEX device_keys_by_user ON device_keys(user_id);
CREATE TABLE one_time_prekeys(
  device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  key_id    INTEGER NOT NULL,
  key       BLOB NOT NULL,
  PRIMARY KEY(device_id, key_id)
) WITHOUT ROWID;
)sql"},
      {6, "replicated conversations", R"sql(
CREATE TABLE conv_events(
  conv_id  TEXT NOT NULL,
  pos      INTEGER NOT NULL,
  actor    TEXT NOT NULL,
  seq      INTEGER NOT NULL,
  event_id TEXT NOT NULL,
  bytes    BLOB NOT NULL,
  sig      BLOB NOT NULL,
  PRIMARY KEY(conv_id, pos)
) WITHOUT ROWID;
CREATE UNIQUE INDEX conv_events_by_actor ON conv_events(conv_id, actor, seq);
)sql"},
      {7, "conversation events waiting for their causal past", R"sql(
CREATE TABLE conv_pending(
  conv_id  TEXT NOT NULL,
  event_id TEXT NOT NULL,
  bytes    BLOB NOT NULL,
  sig      BLOB NOT NULL,
  UNIQUE(conv_id, event_id)
);
)sql"},
      {8, "1:1 conversations ordered by vector clocks", R"sql(
ALTER TABLE messages ADD COLUMN ord_sum INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN ord_actor TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN ord_seq INTEGER NOT NULL DEFAULT 0;
UPDATE messages SET ord_sum = cseq, ord_seq = cseq;
CREATE INDEX messages_in_order ON messages(conv_id, ord_sum, ord_actor, ord_seq);
CREATE TABLE dm_clocks(
  conv_id TEXT NOT NULL,
  actor   TEXT NOT NULL,
  seq     INTEGER NOT NULL,
  PRIMARY KEY(conv_id, actor)
) WITHOUT ROWID;
)sql"},
      {9, "evidence of equivocation", R"sql(
CREATE TABLE conv_equivocations(
  conv_id  TEXT NOT NULL,
  actor    TEXT NOT NULL,
  seq      INTEGER NOT NULL,
  event_id TEXT NOT NULL,
  bytes    BLOB NOT NULL,
  sig      BLOB NOT NULL,
  from_node TEXT NOT NULL,
  at_ms    INTEGER NOT NULL,
  UNIQUE(conv_id, event_id)
);
)sql"},
      {10, "retention, federation epochs", R"sql(
CREATE TABLE retention(
  conv_id          TEXT PRIMARY KEY,
  lifetime_seconds INTEGER NOT NULL,
  set_ms           INTEGER NOT NULL
) WITHOUT ROWID;
ALTER TABLE fed_inbound ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
)sql"},
      {11, "people: deactivation, retired names, send limits, session addresses, abuse reports",
       R"sql(
ALTER TABLE users ADD COLUMN deactivated_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN messages_per_minute INTEGER;
ALTER TABLE users ADD COLUMN message_burst INTEGER;
ALTER TABLE devices ADD COLUMN last_address TEXT NOT NULL DEFAULT '';
CREATE TABLE retired_names(
  name       TEXT PRIMARY KEY,
  retired_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE reports(
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  reporter        TEXT NOT NULL,
  reporter_device INTEGER NOT NULL,
  conv_id         TEXT NOT NULL,
  cseq            INTEGER NOT NULL DEFAULT 0,
  msg_id          TEXT NOT NULL DEFAULT '',
  sender          TEXT NOT NULL,
  sent_ms         INTEGER NOT NULL DEFAULT 0,
  reason          TEXT NOT NULL DEFAULT '',
  text            TEXT,
  created_ms      INTEGER NOT NULL,
  resolved_ms     INTEGER NOT NULL DEFAULT 0,
  note            TEXT NOT NULL DEFAULT ''
);
CREATE INDEX reports_by_state ON reports(resolved_ms, id);
)sql"},
      // Until now every row of `peers` counted as allowed under federation.policy = "allowlist",
      // also the rows the node makes itself for a destination a user wrote to (url '') and for
      // a discovered URL (discovered_ms > 0). Only a static entry (discovered_ms = 0 with a URL)
      // is certainly the admin's `peer add`; an old `peer allow` of a name without an entry looks
      // like an automatic row (url ''), so it is left unlisted: the safe side, the admin adds or
      // allows it again (spec/storage.md).
      {12, "peers listed by the admin", R"sql(
ALTER TABLE peers ADD COLUMN listed INTEGER NOT NULL DEFAULT 0;
UPDATE peers SET listed = 1 WHERE discovered_ms = 0 AND url != '';
)sql"},
  };
  return kMigrations;
}

Status migrate_node_database(Database& db, const std::function<void()>& converting) {
  PARLEY_ASSIGN_OR_RETURN(version, db.schema_version());
  std::int64_t mode = 0;
  {
    PARLEY_ASSIGN_OR_RETURN(st, db.prepare("PRAGMA auto_vacuum"));
    PARLEY_TRY(st.step().status());
    mode = st.column_int64(0);
  }
  if (mode != 2) {
    // Once the file has a first page (in WAL mode: as soon as it is opened) only a VACUUM
    // applies the pragma; on a new, empty file that costs nothing.
    PARLEY_TRY(db.exec("PRAGMA auto_vacuum = INCREMENTAL"));
    if (version > 0 && converting) converting();
    PARLEY_TRY(db.exec("VACUUM"));
  }
  return db.migrate(node_migrations());
}

}  // namespace parley::store
