#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

#include "parley/crypto/secret.h"
#include "parley/store/checkpointer.h"
#include "parley/store/database.h"
#include "parley/store/node_schema.h"

using namespace parley;
using parley::store::Database;

namespace {
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    crypto::init();
    path = std::filesystem::temp_directory_path() /
           ("parley-store-test-" + crypto::hex_encode(crypto::random_bytes(6)));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file(const char* name) const { return (path / name).string(); }
};
const std::vector<store::Migration> kTwo = {
    {1, "t", "CREATE TABLE t(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"},
    {2, "u", "CREATE TABLE u(x INTEGER);"},
};
}  // namespace

TEST_CASE("migrations apply once, in order; newer files are refused") {
  TempDir d;
  auto db = std::move(Database::open(d.file("a.db")).value());
  REQUIRE(*db->schema_version() == 0);
  REQUIRE(db->migrate(kTwo).ok());
  REQUIRE(*db->schema_version() == 2);
  REQUIRE(db->migrate(kTwo).ok());  // no-op
  const std::vector<store::Migration> one = {kTwo[0]};
  REQUIRE(db->migrate(one).error().code == "schema_too_new");
  auto mode = db->prepare("PRAGMA journal_mode");
  REQUIRE(*mode->step());
  REQUIRE(mode->column_text(0) == "wal");
}

TEST_CASE("the node schema migrates from empty") {
  TempDir d;
  auto db = std::move(Database::open(d.file("n.db")).value());
  REQUIRE(db->migrate(store::node_migrations()).ok());
  REQUIRE(*db->schema_version() == static_cast<int>(store::node_migrations().size()));
}

TEST_CASE("schema 12 lists only the static peer entries an older node had") {
  TempDir d;
  auto db = std::move(Database::open(d.file("old.db")).value());
  const auto& all = store::node_migrations();
  REQUIRE(all.size() >= 12);
  const std::vector<store::Migration> old(all.begin(), all.begin() + 11);
  REQUIRE(db->migrate(old).ok());
  // peer add; peer add, then denied; a destination a user wrote to; a discovered URL; a name
  // allowed or denied without an entry (no URL: indistinguishable from a destination's row).
  REQUIRE(db->exec("INSERT INTO peers(name, url, added_ms) VALUES "
                   "('static.example', 'https://s.example', 1), "
                   "('dest.example', '', 1), ('allowed.example', '', 1);"
                   "INSERT INTO peers(name, url, state, added_ms) VALUES "
                   "('denied.example', 'https://d.example', 'denied', 1);"
                   "INSERT INTO peers(name, url, added_ms, discovered_ms) VALUES "
                   "('found.example', 'https://f.example', 1, 5);")
              .ok());
  REQUIRE(db->migrate(all).ok());
  auto st = std::move(db->prepare("SELECT name, listed FROM peers ORDER BY name").value());
  std::vector<std::pair<std::string, std::int64_t>> got;
  while (*st.step()) got.emplace_back(st.column_text(0), st.column_int64(1));
  CHECK(got == std::vector<std::pair<std::string, std::int64_t>>{{"allowed.example", 0},
                                                                 {"denied.example", 1},
                                                                 {"dest.example", 0},
                                                                 {"found.example", 0},
                                                                 {"static.example", 1}});
}

TEST_CASE("transactions roll back unless committed; constraints map to conflict") {
  TempDir d;
  auto db = std::move(Database::open(d.file("b.db")).value());
  REQUIRE(db->migrate(kTwo).ok());
  {
    auto tx = store::Transaction::begin(*db);
    REQUIRE(tx.ok());
    REQUIRE(db->prepare("INSERT INTO t VALUES('a', 1)")->run().ok());
  }  // rolled back
  auto count = [&] {
    auto st = std::move(db->prepare("SELECT count(*) FROM t").value());
    (void)st.step();
    return st.column_int64(0);
  };
  REQUIRE(count() == 0);
  {
    auto tx = std::move(store::Transaction::begin(*db).value());
    REQUIRE(db->prepare("INSERT INTO t VALUES('a', 1)")->run().ok());
    REQUIRE(tx.commit().ok());
  }
  REQUIRE(count() == 1);
  auto dup = db->prepare("INSERT INTO t VALUES('a', 2)")->run();
  REQUIRE(dup.error().code == "conflict");
  REQUIRE(db->prepare("SELEKT").error().code == "storage");
}

TEST_CASE("a batch: transactions become savepoints, one commit stores them, a rollback none") {
  TempDir d;
  auto db = std::move(Database::open(d.file("batch.db")).value());
  REQUIRE(db->migrate(kTwo).ok());
  auto count = [&] {
    auto st = std::move(db->prepare("SELECT count(*) FROM t").value());
    (void)st.step();
    return st.column_int64(0);
  };
  auto insert = [&](const char* key, bool commit) {
    auto tx = std::move(store::Transaction::begin(*db).value());
    REQUIRE(db->prepare(std::string("INSERT INTO t VALUES('") + key + "', 1)")->run().ok());
    if (commit) REQUIRE(tx.commit().ok());
  };
  REQUIRE(db->begin_batch().ok());
  CHECK(db->begin_batch().error().code == "internal");
  insert("a", true);
  insert("b", false);  // only its own writes are undone
  insert("c", true);
  CHECK(count() == 2);
  REQUIRE(db->end_batch().ok());
  CHECK(count() == 2);
  // Another connection sees the batch only after its commit.
  REQUIRE(db->begin_batch().ok());
  insert("d", true);
  {
    auto other = std::move(Database::open(d.file("batch.db")).value());
    auto st = std::move(other->prepare("SELECT count(*) FROM t").value());
    (void)st.step();
    CHECK(st.column_int64(0) == 2);
  }
  REQUIRE(db->end_batch(false).ok());  // rolled back: d is gone
  CHECK(count() == 2);
  // A batch the database rolled back by itself: later transactions refuse, the end reports it.
  REQUIRE(db->begin_batch().ok());
  insert("e", true);
  REQUIRE(db->exec("ROLLBACK").ok());
  CHECK(store::Transaction::begin(*db).error().code == "storage");
  CHECK(db->end_batch().error().code == "storage");
  CHECK(count() == 2);
  CHECK_FALSE(db->in_batch());
}

TEST_CASE("statement cache reuses prepared statements") {
  TempDir d;
  auto db = std::move(Database::open(d.file("c.db")).value());
  REQUIRE(db->migrate(kTwo).ok());
  for (int i = 0; i < 1000; ++i) {
    auto st = db->prepare("INSERT INTO t VALUES(?, ?)");
    REQUIRE(st->bind(1, std::to_string(i)).bind(2, std::int64_t{i}).run().ok());
  }
  auto st = db->prepare("SELECT sum(v) FROM t");
  REQUIRE(*st->step());
  REQUIRE(st->column_int64(0) == 999 * 1000 / 2);
}

TEST_CASE("online backup is consistent while another connection writes") {
  TempDir d;
  auto db = std::move(Database::open(d.file("live.db")).value());
  REQUIRE(db->migrate(kTwo).ok());
  for (int i = 0; i < 100; ++i) {
    REQUIRE(db->prepare("INSERT INTO t VALUES(?, 1)")->bind(1, std::to_string(i)).run().ok());
  }
  auto reader = std::move(Database::open(d.file("live.db")).value());
  auto tx = std::move(store::Transaction::begin(*db).value());
  REQUIRE(db->prepare("INSERT INTO t VALUES('uncommitted', 1)")->run().ok());
  REQUIRE(reader->backup_to(d.file("copy.db")).ok());
  REQUIRE(tx.commit().ok());
  auto copy = std::move(Database::open(d.file("copy.db")).value());
  auto st = copy->prepare("SELECT count(*) FROM t");
  REQUIRE(*st->step());
  REQUIRE(st->column_int64(0) == 100);  // the snapshot excludes the write in flight
  REQUIRE_FALSE(std::filesystem::exists(d.file("copy.db.tmp")));
}

TEST_CASE("a read-only or full disk refuses writes with its own code; reads go on; writes resume") {
  TempDir d;
  const std::string control = d.file("fault");
  Database::Options o;
  o.fault_file = control;
  auto db = Database::open(d.file("f.db"), o);
  REQUIRE(db.ok());
  REQUIRE((*db)->migrate(kTwo).ok());
  REQUIRE((*db)->exec("INSERT INTO t VALUES('a', 1)").ok());
  const auto write_fault = [&](const char* word) {
    std::FILE* f = std::fopen(control.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fputs(word, f);
    std::fclose(f);
  };
  const auto count = [&] {
    auto st = (*db)->prepare("SELECT COUNT(*) FROM t");
    REQUIRE(st.ok());
    REQUIRE(*st->step());
    return st->column_int64(0);
  };
  for (const auto& [word, code] : {std::pair{"readonly", "read_only"}, {"full", "disk_full"}}) {
    const auto before = count();
    write_fault(word);
    // A batch: the write fails at commit (WAL frames are written then), and nothing is kept.
    REQUIRE((*db)->begin_batch().ok());
    REQUIRE((*db)->exec("INSERT INTO t VALUES('refused', 2)").ok());
    const Status committed = (*db)->end_batch(true);
    REQUIRE_FALSE(committed.ok());
    CHECK(committed.error().code == code);
    CHECK(store::write_refused(committed.error()));
    CHECK(count() == before);
    std::filesystem::remove(control);
    REQUIRE((*db)->exec("INSERT OR REPLACE INTO t VALUES('after', 3)").ok());
    CHECK(count() == 2);
  }
  db->reset();
  auto again = Database::open(d.file("f.db"));
  REQUIRE(again.ok());
  auto st = (*again)->prepare("SELECT group_concat(k) FROM (SELECT k FROM t ORDER BY k)");
  REQUIRE(st.ok());
  REQUIRE(*st->step());
  CHECK(st->column_text(0) == "a,after");
}

TEST_CASE("without autocheckpoint the WAL grows; the checkpointer's thread empties it") {
  TempDir d;
  Database::Options o;
  o.auto_checkpoint = false;
  auto db = Database::open(d.file("c.db"), o);
  REQUIRE(db.ok());
  REQUIRE((*db)->migrate(kTwo).ok());
  const auto wal_size = [&] {
    std::error_code ec;
    const auto n = std::filesystem::file_size(d.file("c.db") + "-wal", ec);
    return ec ? std::uintmax_t{0} : n;
  };
  const auto fill = [&](int from) {
    for (int i = from; i < from + 3000; ++i) {
      auto st = (*db)->prepare("INSERT INTO t VALUES(?, ?)");
      REQUIRE(st.ok());
      REQUIRE(
          st->bind(1, "key-" + std::to_string(i) + std::string(200, 'x')).bind(2, i).run().ok());
    }
  };
  fill(0);
  // 3000 autocommits of ~200 bytes: far past the 1000 pages autocheckpoint would allow.
  REQUIRE(wal_size() > 4096 * 1000);
  auto cp = store::Checkpointer::start(d.file("c.db"), o, std::chrono::milliseconds(10));
  REQUIRE(cp.ok());
  for (int i = 0; i < 200 && (*cp)->checkpoints() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CHECK((*cp)->checkpoints() > 0);
  fill(3000);  // the writer goes on while checkpoints run
  (*cp)->stop();
  CHECK((*cp)->failures() == 0);
  CHECK(wal_size() == 0);  // the final TRUNCATE checkpoint
  auto st = (*db)->prepare("SELECT COUNT(*) FROM t");
  REQUIRE(st.ok());
  REQUIRE(*st->step());
  CHECK(st->column_int64(0) == 6000);
}
