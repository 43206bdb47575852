// ConvStore (node/conv_store.h): conversations survive a restart exactly (same events, order,
// state and clock), a stored event keeps its signature, buffered events are not stored, and the
// epoch from node_meta makes the actor of new events.
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
    std::map<std::string, std::string> sigs;
    auto add = [&](conv::Event e, const crypto::SigningKey& k) {
      sigs[e.id()] = conv::sign_event(e, k).signature;
    };
    add(*r->create(conv::Kind::kCreate, "ann@a.example", "", "", "bob@b.example\n", 1), key);
    add(*r->create(conv::Kind::kMessage, "ann@a.example", "", "", "x", 2), key);
    // An event from b, and one from b that is not ready yet (it waits in memory only).
    conv::Replica b(conv_id, "b.example");
    for (const auto& e : r->log()) b.receive(e);
    auto b1 = *b.create(conv::Kind::kMessage, "bob@b.example", "", "", "y", 3);
    late = *b.create(conv::Kind::kMessage, "bob@b.example", "", "", "z", 4);
    CHECK(r->receive(late) == conv::Replica::Outcome::kBuffered);
    CHECK(r->receive(b1) == conv::Replica::Outcome::kApplied);  // and `late` with it
    add(b1, other_key);
    add(late, other_key);
    {
      store::Transaction tx = std::move(store::Transaction::begin(*db).value());
      REQUIRE(store.persist(conv_id, sigs).ok());
      REQUIRE(tx.commit().ok());
    }
    REQUIRE(store.persist(conv_id, sigs).ok());  // nothing new: nothing written twice
    hash = r->state().hash();
    clock = r->clock();
    for (const auto* e : r->ordered()) ids.push_back(e->id());
    auto listed = store.list();
    REQUIRE(listed->size() == 1);
    CHECK((*listed)[0].events == 4);
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
  auto sig = again.signature(conv_id, late.id());
  REQUIRE(sig.ok());
  CHECK(conv::SignedEvent{late, *sig}.verify(other_key.public_key()));
  // After a restore the node runs under a new epoch: its new events have a new actor.
  REQUIRE(db->exec("INSERT INTO node_meta(key, value) VALUES('epoch', '1')").ok());
  again.drop_cache();
  auto* restored = *again.find(conv_id);
  auto e = restored->create(conv::Kind::kMessage, "ann@a.example", "", "", "after", 5);
  REQUIRE(e.ok());
  CHECK(e->actor() == "a.example#1");
  CHECK(e->seq == 1);
}
