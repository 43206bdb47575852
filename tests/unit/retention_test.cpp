#include <catch2/catch.hpp>
#include <filesystem>

#include "parley/crypto/secret.h"
#include "parley/node/retention.h"
#include "parley/store/database.h"
#include "parley/store/node_schema.h"

using namespace parley;

namespace {

struct Fixture {
  std::filesystem::path dir;
  std::unique_ptr<store::Database> db;
  Fixture() {
    crypto::init();
    dir = std::filesystem::temp_directory_path() /
          ("parley-retention-test-" + crypto::hex_encode(crypto::random_bytes(6)));
    std::filesystem::create_directories(dir);
    db = std::move(store::Database::open((dir / "n.db").string()).value());
    REQUIRE(store::migrate_node_database(*db).ok());
    REQUIRE(db->exec("INSERT INTO users(id, name, password_hash, created_ms, stream_seq) VALUES"
                     "(1, 'a', 'h', 0, 10), (2, 'b', 'h', 0, 10);"
                     "INSERT INTO conversations(id, kind, created_ms) VALUES('dm:1', 'dm', 0), "
                     "('dm:2', 'dm', 0), ('g:1', 'group', 0);")
                .ok());
  }
  ~Fixture() {
    db.reset();
    std::filesystem::remove_all(dir);
  }
  void message(const char* conv, int cseq, std::int64_t sent_ms) {
    auto st = db->prepare(
        "INSERT INTO messages(conv_id, cseq, sender, sender_device, recipient, msg_id, body, "
        "sent_ms) VALUES(?, ?, 'a@x', 1, 'b@x', ?, zeroblob(2000), ?)");
    REQUIRE(st.ok());
    REQUIRE(st->bind(1, conv)
                .bind(2, std::int64_t{cseq})
                .bind(3, std::string(conv) + std::to_string(cseq))
                .bind(4, sent_ms)
                .run()
                .ok());
  }
  void entry(int user, int seq, const char* conv, std::int64_t at_ms) {
    auto st = db->prepare(
        "INSERT INTO stream(user_id, seq, kind, at_ms, conv_id) VALUES(?, ?, 'msg', ?, ?)");
    REQUIRE(st.ok());
    st->bind(1, std::int64_t{user}).bind(2, std::int64_t{seq}).bind(3, at_ms);
    conv ? st->bind(4, conv) : st->bind_null(4);
    REQUIRE(st->run().ok());
  }
  std::int64_t count(const char* sql) {
    auto st = db->prepare(sql);
    REQUIRE(st.ok());
    REQUIRE(*st->step());
    return st->column_int64(0);
  }
};

}  // namespace

TEST_CASE("lifetimes parse and print in days, hours, minutes, seconds") {
  CHECK(*node::parse_lifetime("30d") == 30 * 86400);
  CHECK(*node::parse_lifetime("12h") == 43200);
  CHECK(*node::parse_lifetime("90m") == 5400);
  CHECK(*node::parse_lifetime("45") == 45);
  CHECK(*node::parse_lifetime("forever") == 0);
  CHECK(node::parse_lifetime("soon").error().code == "bad_request");
  CHECK(node::parse_lifetime("-3d").error().code == "bad_request");
  CHECK(node::parse_lifetime("12w").error().code == "bad_request");
  CHECK(node::parse_lifetime("99999999999d").error().code == "bad_request");
  CHECK(node::format_lifetime(0) == "forever");
  CHECK(node::format_lifetime(36 * 3600) == "36h");
  CHECK(node::format_lifetime(86400 * 7) == "7d");
  CHECK(node::format_lifetime(61) == "61s");
}

TEST_CASE("a purge run removes what is past its lifetime, in bounded steps") {
  Fixture f;
  node::Retention r(*f.db);
  const std::int64_t now = 10'000'000;
  for (int i = 1; i <= 25; ++i) f.message("dm:1", i, now - 5000 + i);  // 5 s old
  for (int i = 1; i <= 5; ++i) f.message("dm:2", i, now - 5000);
  f.message("dm:1", 26, now);  // fresh
  for (int i = 1; i <= 10; ++i) f.entry(1, i, i % 2 ? "dm:1" : nullptr, now - 5000);
  for (int i = 1; i <= 10; ++i) f.entry(2, i, "dm:2", now - 5000);
  // user 1 has a device that acknowledged up to 6; user 2 none signed in (holds nothing back).
  REQUIRE(f.db->exec("INSERT INTO devices(user_id, label, token_hash, cursor, created_ms, "
                     "last_seen_ms) VALUES(1, 'd', 'x', 6, 0, 0), (1, 'old', NULL, 0, 0, 0)")
              .ok());

  CHECK(f.count("PRAGMA auto_vacuum") == 2);
  SECTION("forever by default: nothing to purge") {
    auto c = r.eligible(now);
    CHECK(c->messages == 0);
    CHECK(c->stream_entries == 0);
  }
  SECTION("a default with an override") {
    REQUIRE(r.set_default(4, now).ok());
    REQUIRE(r.set_override("dm:2", 0, now).ok());  // dm:2 forever
    CHECK(r.set_override("dm:9", 1, now).error().code == "not_found");
    auto c = r.eligible(now);
    CHECK(c->messages == 25);
    CHECK(c->stream_entries == 6);  // user 1's entries up to the cursor; user 2's are dm:2
    int steps = 0;
    node::PurgeProgress p;
    do {
      p = r.step(now, 10).value();
      ++steps;
    } while (!p.done);
    CHECK(steps >= 4);  // 25 messages at most 10 a step
    CHECK(p.counts.messages == 25);
    CHECK(p.counts.stream_entries == 6);
    CHECK(p.counts.pages_freed > 0);
    CHECK(f.count("SELECT count(*) FROM messages WHERE conv_id = 'dm:1'") == 1);
    CHECK(f.count("SELECT count(*) FROM messages WHERE conv_id = 'dm:2'") == 5);
    CHECK(f.count("SELECT count(*) FROM stream WHERE user_id = 1") == 4);
    CHECK(f.count("SELECT count(*) FROM stream WHERE user_id = 2") == 10);
    CHECK(f.count("PRAGMA freelist_count") == 0);
    CHECK(r.last_run()->counts.messages == 25);
    CHECK(r.eligible(now)->messages == 0);
    // Back to the default: dm:2 goes at the next run.
    REQUIRE(r.set_override("dm:2", std::nullopt, now).ok());
    CHECK(r.eligible(now)->messages == 5);
    CHECK(r.eligible(now)->stream_entries == 10);
  }
  SECTION("a conversation loses only a prefix; stream reads stop at the first young entry") {
    f.message("dm:2", 6, now);                                  // young
    f.message("dm:2", 7, now - 5000);                           // old, but after a young one: stays
    for (int i = 11; i <= 15; ++i) f.entry(2, i, "dm:2", now);  // young entries
    REQUIRE(f.db->exec("UPDATE users SET stream_seq = 15 WHERE id = 2").ok());
    REQUIRE(r.set_default(4, now).ok());
    CHECK(r.eligible(now)->messages == 25 + 5);
    node::PurgeProgress p;
    int steps = 0;
    do {
      p = r.step(now, 3).value();
      ++steps;
    } while (!p.done && steps < 100);
    REQUIRE(p.done);
    CHECK(p.counts.messages == 30);
    CHECK(p.counts.stream_entries == 6 + 10);
    CHECK(f.count("SELECT count(*) FROM messages WHERE conv_id = 'dm:2'") == 2);
    CHECK(f.count("SELECT count(*) FROM stream WHERE user_id = 2") == 5);
  }
}
