#include "parley/node/retention.h"

#include <algorithm>
#include <cctype>

#include "parley/store/database.h"

namespace parley::node {

namespace {

constexpr const char* kDefaultKey = "retention_default_seconds";
constexpr int kConversationsPerStep = 64;
constexpr int kUsersPerStep = 64;

}  // namespace

Retention::Retention(store::Database& db) : db_(db) {}

Result<RetentionPolicy> Retention::policy() {
  RetentionPolicy p;
  {
    PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("SELECT value FROM node_meta WHERE key = ?"));
    st.bind(1, kDefaultKey);
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (row) p.default_seconds = std::stoll(st.column_text(0));
  }
  PARLEY_ASSIGN_OR_RETURN(
      st, db_.prepare("SELECT conv_id, lifetime_seconds, set_ms FROM retention ORDER BY conv_id"));
  for (;;) {
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) break;
    p.overrides.push_back({st.column_text(0), st.column_int64(1), st.column_int64(2)});
  }
  return p;
}

Status Retention::set_default(std::int64_t lifetime_seconds, std::int64_t) {
  if (lifetime_seconds < 0) return make_error("bad_request", "a lifetime cannot be negative");
  PARLEY_ASSIGN_OR_RETURN(
      st, db_.prepare("INSERT INTO node_meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO "
                      "UPDATE SET value = excluded.value"));
  return st.bind(1, kDefaultKey).bind(2, std::to_string(lifetime_seconds)).run();
}

Status Retention::set_override(const std::string& conv,
                               std::optional<std::int64_t> lifetime_seconds, std::int64_t now_ms) {
  if (lifetime_seconds && *lifetime_seconds < 0) {
    return make_error("bad_request", "a lifetime cannot be negative");
  }
  {
    PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("SELECT 1 FROM conversations WHERE id = ?"));
    st.bind(1, conv);
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) return make_error("not_found", "this node holds no conversation " + conv);
  }
  if (!lifetime_seconds) {
    PARLEY_ASSIGN_OR_RETURN(st, db_.prepare("DELETE FROM retention WHERE conv_id = ?"));
    return st.bind(1, conv).run();
  }
  PARLEY_ASSIGN_OR_RETURN(
      st, db_.prepare("INSERT INTO retention(conv_id, lifetime_seconds, set_ms) VALUES(?, ?, ?) "
                      "ON CONFLICT(conv_id) DO UPDATE SET lifetime_seconds = "
                      "excluded.lifetime_seconds, set_ms = excluded.set_ms"));
  return st.bind(1, conv).bind(2, *lifetime_seconds).bind(3, now_ms).run();
}

std::int64_t Retention::lifetime_of(const RetentionPolicy& p, const std::string& conv) const {
  const auto it =
      std::lower_bound(p.overrides.begin(), p.overrides.end(), conv,
                       [](const RetentionOverride& o, const std::string& c) { return o.conv < c; });
  if (it != p.overrides.end() && it->conv == conv) return it->lifetime_seconds;
  return p.default_seconds;
}

// Messages of a few conversations past their lifetime. A conversation loses a prefix (in cseq
// order) of messages that are all past it, so its history stays contiguous and finding the end
// of that prefix reads only the prefix and one more row. Returns the rows removed (or counted);
// `limit` 0 counts without bound.
Result<int> Retention::purge_messages(Run& run, int limit, bool count_only) {
  PARLEY_ASSIGN_OR_RETURN(
      convs, db_.prepare("SELECT id FROM conversations WHERE id > ? AND kind != 'group' ORDER BY "
                         "id LIMIT ?"));
  convs.bind(1, run.after_conv).bind(2, std::int64_t{kConversationsPerStep});
  std::vector<std::string> ids;
  for (;;) {
    PARLEY_ASSIGN_OR_RETURN(row, convs.step());
    if (!row) break;
    ids.push_back(convs.column_text(0));
  }
  if (ids.empty()) {
    run.progress.phase = "stream";
    return 0;
  }
  int removed = 0;
  for (const auto& conv : ids) {
    const std::int64_t life = lifetime_of(run.policy, conv);
    if (life > 0) {
      // The first cseq that stays, found once per conversation and run (deleting the rows
      // before it does not move it).
      if (run.prefix_conv != conv) {
        run.prefix_conv = conv;
        run.prefix_end = INT64_MAX;
        PARLEY_ASSIGN_OR_RETURN(
            st, db_.prepare("SELECT cseq FROM messages WHERE conv_id = ? AND sent_ms >= ? ORDER "
                            "BY cseq LIMIT 1"));
        st.bind(1, conv).bind(2, run.now_ms - life * 1000);
        PARLEY_ASSIGN_OR_RETURN(row, st.step());
        if (row) run.prefix_end = st.column_int64(0);
      }
      const std::int64_t kept_from = run.prefix_end;
      if (count_only) {
        PARLEY_ASSIGN_OR_RETURN(
            st, db_.prepare("SELECT count(*) FROM messages WHERE conv_id = ? AND cseq < ?"));
        st.bind(1, conv).bind(2, kept_from);
        PARLEY_TRY(st.step().status());
        removed += static_cast<int>(st.column_int64(0));
      } else {
        PARLEY_ASSIGN_OR_RETURN(
            st, db_.prepare("DELETE FROM messages WHERE conv_id = ?1 AND cseq IN (SELECT cseq "
                            "FROM messages WHERE conv_id = ?1 AND cseq < ?2 ORDER BY cseq LIMIT "
                            "?3)"));
        PARLEY_TRY(
            st.bind(1, conv).bind(2, kept_from).bind(3, std::int64_t{limit - removed}).run());
        removed += db_.changes();
        if (removed >= limit) return removed;  // this conversation may hold more: come back
      }
    }
    run.after_conv = conv;
  }
  return removed;
}

// Stream entries that every signed-in device of their user has received and that are past the
// lifetime of their conversation (the node default for entries without one). A user's entries
// are read in seq order, which is also at_ms order, from where the run left off, at most `limit`
// a step, and only up to the first entry younger than the shortest lifetime in effect.
Result<int> Retention::purge_stream(Run& run, int limit, bool count_only) {
  std::int64_t shortest = run.policy.default_seconds;
  for (const auto& o : run.policy.overrides) {
    if (o.lifetime_seconds > 0 && (shortest == 0 || o.lifetime_seconds < shortest)) {
      shortest = o.lifetime_seconds;
    }
  }
  PARLEY_ASSIGN_OR_RETURN(
      users,
      db_.prepare("SELECT u.id, coalesce((SELECT min(d.cursor) FROM devices d WHERE d.user_id = "
                  "u.id AND d.token_hash IS NOT NULL), u.stream_seq) FROM users u WHERE u.id >= ? "
                  "ORDER BY u.id LIMIT ?"));
  users.bind(1, run.after_user).bind(2, std::int64_t{kUsersPerStep});
  std::vector<std::pair<std::int64_t, std::int64_t>> todo;  // user, delivered up to
  for (;;) {
    PARLEY_ASSIGN_OR_RETURN(row, users.step());
    if (!row) break;
    todo.emplace_back(users.column_int64(0), users.column_int64(1));
  }
  if (todo.empty() || shortest == 0) {
    run.progress.phase = "vacuum";
    return 0;
  }
  const bool bounded = limit > 0;
  int removed = 0, read = 0;
  for (const auto& [user, delivered] : todo) {
    run.after_user = user;  // run.after_seq: 0, or where the previous step stopped in it
    std::vector<std::int64_t> expired;
    bool young = false;  // reached an entry younger than every lifetime: the rest are too
    int rows = 0;
    {
      PARLEY_ASSIGN_OR_RETURN(
          scan, db_.prepare("SELECT seq, at_ms, conv_id FROM stream WHERE user_id = ? AND seq > ? "
                            "AND seq <= ? ORDER BY seq LIMIT ?"));
      scan.bind(1, user)
          .bind(2, run.after_seq)
          .bind(3, delivered)
          .bind(4, std::int64_t{bounded ? limit - read : INT32_MAX});
      for (;;) {
        PARLEY_ASSIGN_OR_RETURN(row, scan.step());
        if (!row) break;
        const std::int64_t at = scan.column_int64(1);
        if (at >= run.now_ms - shortest * 1000) {
          young = true;
          break;
        }
        ++rows;
        const std::int64_t seq = scan.column_int64(0);
        const std::int64_t life = lifetime_of(run.policy, scan.column_text(2));
        if (life > 0 && at < run.now_ms - life * 1000) expired.push_back(seq);
        run.after_seq = seq;
      }
    }
    read += rows;
    if (count_only) {
      removed += static_cast<int>(expired.size());
    } else {
      for (const std::int64_t seq : expired) {
        PARLEY_ASSIGN_OR_RETURN(del,
                                db_.prepare("DELETE FROM stream WHERE user_id = ? AND seq = ?"));
        PARLEY_TRY(del.bind(1, user).bind(2, seq).run());
        ++removed;
      }
    }
    if (bounded && !young && read >= limit) return removed;  // more of this user: come back
    run.after_user = user + 1;
    run.after_seq = 0;
  }
  return removed;
}

// Gives up to `pages` free pages back to the file system (databases created with
// auto_vacuum = INCREMENTAL; others keep free pages for reuse). Returns the pages freed.
Result<int> Retention::vacuum(int pages) {
  auto pragma = [this](const std::string& sql) -> Result<std::int64_t> {
    PARLEY_ASSIGN_OR_RETURN(st, db_.prepare(sql));
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    return row ? st.column_int64(0) : 0;
  };
  PARLEY_ASSIGN_OR_RETURN(mode, pragma("PRAGMA auto_vacuum"));
  if (mode != 2) return 0;
  PARLEY_ASSIGN_OR_RETURN(before, pragma("PRAGMA freelist_count"));
  if (before == 0) return 0;
  PARLEY_TRY(db_.exec("PRAGMA incremental_vacuum(" + std::to_string(pages) + ")"));
  PARLEY_ASSIGN_OR_RETURN(after, pragma("PRAGMA freelist_count"));
  return static_cast<int>(before - after);
}

Result<PurgeCounts> Retention::eligible(std::int64_t now_ms) {
  PARLEY_ASSIGN_OR_RETURN(p, policy());
  Run run;
  run.now_ms = now_ms;
  run.policy = std::move(p);
  run.progress.phase = "messages";
  PurgeCounts counts;
  while (run.progress.phase == "messages") {
    PARLEY_ASSIGN_OR_RETURN(n, purge_messages(run, 0, true));
    counts.messages += n;
  }
  while (run.progress.phase == "stream") {
    PARLEY_ASSIGN_OR_RETURN(n, purge_stream(run, 0, true));
    counts.stream_entries += n;
  }
  return counts;
}

Result<PurgeProgress> Retention::step(std::int64_t now_ms, int limit) {
  limit = std::max(limit, 1);
  if (!run_) {
    PARLEY_ASSIGN_OR_RETURN(p, policy());
    Run run;
    run.now_ms = now_ms;
    run.policy = std::move(p);
    run.progress.phase = "messages";
    run.progress.started_ms = now_ms;
    run_ = std::move(run);
  }
  Run& run = *run_;
  if (run.progress.phase == "messages" || run.progress.phase == "stream") {
    const bool messages = run.progress.phase == "messages";
    PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(db_));
    Result<int> n = messages ? purge_messages(run, limit, false) : purge_stream(run, limit, false);
    if (!n.ok()) {
      run_.reset();  // the next step starts over; nothing of this one was kept
      return n.take_error();
    }
    PARLEY_TRY(tx.commit());
    (messages ? run.progress.counts.messages : run.progress.counts.stream_entries) += *n;
  } else if (run.progress.phase == "vacuum") {
    PARLEY_ASSIGN_OR_RETURN(n, vacuum(limit));
    run.progress.counts.pages_freed += n;
    if (n == 0) run.progress.phase = "done";
  }
  PurgeProgress out = run.progress;
  if (run.progress.phase == "done") {
    out.done = true;
    out.finished_ms = now_ms;
    last_ = out;
    run_.reset();
  }
  return out;
}

Result<std::int64_t> parse_lifetime(const std::string& text) {
  if (text == "forever" || text == "0") return 0;
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  const std::string unit = text.substr(digits);
  std::int64_t scale = 0;
  if (unit.empty() || unit == "s") scale = 1;
  if (unit == "m") scale = 60;
  if (unit == "h") scale = 3600;
  if (unit == "d") scale = 86400;
  if (digits == 0 || digits > 9 || scale == 0) {
    return make_error("bad_request",
                      "a lifetime is a number with s, m, h or d (30d, 12h, 90m, "
                      "45s) or 'forever', not '" +
                          text + "'");
  }
  return std::stoll(text.substr(0, digits)) * scale;
}

std::string format_lifetime(std::int64_t seconds) {
  if (seconds <= 0) return "forever";
  if (seconds % 86400 == 0) return std::to_string(seconds / 86400) + "d";
  if (seconds % 3600 == 0) return std::to_string(seconds / 3600) + "h";
  if (seconds % 60 == 0) return std::to_string(seconds / 60) + "m";
  return std::to_string(seconds) + "s";
}

}  // namespace parley::node
