// ConvStore (node/conv_store.h): conversations survive a restart exactly (same events, order,
// state and clock), a stored event keeps its signature, buffered events survive a restart too, and
// the epoch from node_meta makes the actor of new events.
#include <catch2/catch.hpp>
#include <filesystem>

#include "parley/conv/replica.h"
#include "parley/crypto/secret.h"
#include "parley/crypto/sign.h"
#include "parley/node/conv_store.h"
#include "parley/store/database.h"
#include "parley/store/node_schema.h"

using namespace parley;

namespace {

struct TempDb {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() /
      ("parley-conv-store-" + crypto::hex_encode(crypto::random_bytes(6)) + ".db");
  std::unique_ptr<store::Database> open() {
    auto db = std::move(store::Database::open(path.string()).value());
    REQUIRE(db->migrate(store::node_migrations()).ok());
    return db;
  }
  ~TempDb() {
    for (const char* s : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + s);
  }
};

}  // namespace

TEST_CASE("conversations are stored with their signatures and come back after a restart") {
  crypto::init();
  TempDb tmp;
  const auto key = crypto::SigningKey::generate();
  const auto other_key = crypto::SigningKey::generate();
  std::string hash, conv_id = "g:test";
  conv::Clock clock;
  std::vector<std::string> ids;
  conv::Event late;
  {
    auto db = tmp.open();
    node::ConvStore store(*db, "a.example");
    CHECK(*store.find(conv_id) == nullptr);
    auto* r = *store.open(conv_id);
    store::Transaction tx = std::move(store::Transaction::begin(*db).value());
    REQUIRE(store
                .create(conv_id, conv::Kind::kCreate, "ann@a.example", "", "", "bob@b.example\n", 1,
                        key)
                .ok());
    REQUIRE(store.create(conv_id, conv::Kind::kMessage, "ann@a.example", "", "", "x", 2, key).ok());
    // Events from b; the later one arrives first and waits for the earlier one.
    conv::Replica b(conv_id, "b.example");
    for (const auto& e : r->log()) b.receive(e);
    auto b1 = *b.create(conv::Kind::kMessage, "bob@b.example", "", "", "y", 3);
    late = *b.create(conv::Kind::kMessage, "bob@b.example", "", "", "z", 4);
    CHECK(*store.receive(conv_id, conv::sign_event(late, other_key)) ==
          conv::Replica::Outcome::kBuffered);
    auto written = store.persist(conv_id);
    REQUIRE(written.ok());
    CHECK(*written == std::pair<std::size_t, std::size_t>{0, 2});
    REQUIRE(tx.commit().ok());
    hash = r->state().hash();
    // A restart here keeps the buffered event: it applies when its causal past arrives.
    store.drop_cache();
    r = *store.find(conv_id);
    REQUIRE(r != nullptr);
    CHECK(r->buffered() == 1);
    CHECK(r->state().hash() == hash);
    store::Transaction tx2 = std::move(store::Transaction::begin(*db).value());
    CHECK(*store.receive(conv_id, conv::sign_event(b1, other_key)) ==
          conv::Replica::Outcome::kApplied);  // and `late` with it
    CHECK(*store.receive(conv_id, conv::sign_event(b1, other_key)) ==
          conv::Replica::Outcome::kDuplicate);
    CHECK(*store.persist(conv_id) == std::pair<std::size_t, std::size_t>{2, 4});
    REQUIRE(tx2.commit().ok());
    CHECK(*store.persist(conv_id) == std::pair<std::size_t, std::size_t>{4, 4});  // nothing new
    CHECK(store.waiting().empty());
    hash = r->state().hash();
    clock = r->clock();
    for (const auto* e : r->ordered()) ids.push_back(e->id());
    auto listed = store.list();
    REQUIRE(listed->size() == 1);
    CHECK((*listed)[0].events == 4);
    CHECK((*listed)[0].buffered == 0);
    CHECK((*listed)[0].members.at("ann@a.example") == "admin");
    CHECK((*listed)[0].nodes == std::vector<std::string>{"a.example", "b.example"});
  }
  auto db = tmp.open();
  node::ConvStore again(*db, "a.example");
  auto* r = *again.find(conv_id);
  REQUIRE(r != nullptr);
  CHECK(r->state().hash() == hash);
  CHECK(r->clock() == clock);
  std::vector<std::string> back;
  for (const auto* e : r->ordered()) back.push_back(e->id());
  CHECK(back == ids);
  auto kept = again.stored(conv_id, late);
  REQUIRE(kept.ok());
  CHECK(kept->verify(other_key.public_key()));
  CHECK(kept->event.id() == late.id());
  // After a restore the node runs under a new epoch: its new events have a new actor.
  REQUIRE(db->exec("INSERT INTO node_meta(key, value) VALUES('epoch', '1')").ok());
  again.drop_cache();
  auto* restored = *again.find(conv_id);
  auto e = restored->create(conv::Kind::kMessage, "ann@a.example", "", "", "after", 5);
  REQUIRE(e.ok());
  CHECK(e->actor() == "a.example#1");
  CHECK(e->seq == 1);
}

TEST_CASE("a waiting event refused once its causal past is here leaves conv_pending") {
  crypto::init();
  TempDb tmp;
  const auto key = crypto::SigningKey::generate();
  const std::string conv_id = "g:refused";
  auto db = tmp.open();
  node::ConvStore store(*db, "a.example");
  auto* r = *store.open(conv_id);
  store::Transaction tx = std::move(store::Transaction::begin(*db).value());
  REQUIRE(
      store.create(conv_id, conv::Kind::kCreate, "ann@a.example", "", "", "bob@b.example\n", 1, key)
          .ok());
  REQUIRE(store.persist(conv_id).ok());
  conv::Replica b(conv_id, "b.example");
  for (const auto& e : r->log()) b.receive(e);
  auto b1 = *b.create(conv::Kind::kMessage, "bob@b.example", "", "", "y", 2);
  // b's second event forgets the create it had seen: its clock regresses.
  conv::Event b2 = b1;
  b2.seq = 2;
  b2.clock = {{"b.example#0", 2}};
  CHECK(*store.receive(conv_id, conv::sign_event(b2, key)) == conv::Replica::Outcome::kBuffered);
  auto pending = [&] {
    auto st = std::move(db->prepare("SELECT count(*) FROM conv_pending").value());
    REQUIRE(st.step().ok());
    return st.column_int64(0);
  };
  CHECK(pending() == 1);
  CHECK(*store.receive(conv_id, conv::sign_event(b1, key)) == conv::Replica::Outcome::kApplied);
  CHECK(pending() == 0);
  const auto refused = store.take_refused(conv_id);
  REQUIRE(refused.size() == 1);
  CHECK(refused[0].first.id() == b2.id());
  CHECK(refused[0].second == "clock regresses");
  REQUIRE(store.persist(conv_id).ok());
  REQUIRE(tx.commit().ok());
  CHECK(r->log().size() == 2);
}
