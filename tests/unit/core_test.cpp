// The node core driven directly: fake connections, a fake clock and synchronous password checks
// over a real SQLite database. Covers authentication, rate limiting, streams and cursors, sending,
// receipts and the relationship rules.
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <set>

#include "parley/address.h"
#include "parley/conv/replica.h"
#include "parley/crypto/password.h"
#include "parley/crypto/secret.h"
#include "parley/crypto/sign.h"
#include "parley/federation/peers.h"
#include "parley/node/conv_store.h"
#include "parley/node/core.h"
#include "parley/store/database.h"
#include "parley/store/node_schema.h"

using namespace parley;
using namespace parley::node;

namespace {

struct FakeOutlet : Outlet {
  std::vector<wire::Message> frames;
  std::string closed_code;
  int drain_requests = 0;
  void send(std::string payload) override { frames.push_back(*wire::Message::parse(payload)); }
  void notify_when_drained() override { ++drain_requests; }
  void close(std::string code, std::string) override { closed_code = code; }
};

struct FakeClock : Clock {
  std::int64_t now = 1'800'000'000'000;
  std::int64_t now_ms() override { return now; }
};

struct SyncPasswords : PasswordWork {
  void verify(std::string hash, std::string pw, std::function<void(bool)> done) override {
    done(crypto::verify_password(hash, pw));
  }
};

struct Client {
  std::shared_ptr<FakeOutlet> out = std::make_shared<FakeOutlet>();
  ConnId id = 0;
  std::uint64_t next = 1;
};

class Harness {
 public:
  explicit Harness(DirectMessagePolicy policy = DirectMessagePolicy::kFriends) {
    crypto::init();
    path_ = std::filesystem::temp_directory_path() /
            ("parley-core-test-" + crypto::hex_encode(crypto::random_bytes(6)) + ".db");
    db_ = std::move(store::Database::open(path_.string()).value());
    REQUIRE(db_->migrate(store::node_migrations()).ok());
    NodeConfig config;
    config.name = "example.org";
    config.direct_messages = policy;
    config.password_strength = crypto::PasswordStrength::kTestOnlyMinimal;
    config.max_body_bytes = 1000;
    core_ = std::make_unique<Core>(config, *db_, clock, passwords_, hash("dummy-password"));
  }
  ~Harness() {
    core_.reset();
    db_.reset();
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::filesystem::remove(path_.string() + suffix);
    }
  }

  static std::string hash(const std::string& pw) {
    return *crypto::hash_password(pw, crypto::PasswordStrength::kTestOnlyMinimal);
  }
  void add_user(const std::string& name) {
    REQUIRE(core_->add_user(name, hash("pw-" + name)).ok());
  }

  Client connect(const std::string& source = "10.0.0.1") {
    Client c;
    c.id = core_->on_connect(c.out, source);
    return c;
  }

  // Sends one request and returns its response.
  wire::Message request(Client& c, wire::MapWriter fields, const std::string& type) {
    wire::MapWriter w;
    const std::uint64_t id = c.next++;
    w.add("t", type).add("id", id);
    w.merge_map(fields.finish());
    const std::size_t before = c.out->frames.size();
    core_->on_frame(c.id, *wire::Message::parse(w.finish()));
    for (std::size_t i = before; i < c.out->frames.size(); ++i) {
      const auto& f = c.out->frames[i];
      if (f.type() == "re" && *f.root().uint("id") == id) {
        return std::move(c.out->frames[i]);
      }
    }
    FAIL("no response to " << type);
    return *wire::Message::parse("\x80");
  }

  Client login(const std::string& name, const std::string& device = "d") {
    Client c = connect();
    wire::MapWriter f;
    f.add("user", name + "@example.org").add("password", "pw-" + name).add("device", device);
    auto re = request(c, f, "login");
    REQUIRE(*re.root().boolean("ok"));
    return c;
  }

  // Stream events pushed to a client so far (and forgets them).
  std::vector<wire::Message> events(Client& c) {
    std::vector<wire::Message> out;
    for (auto& f : c.out->frames) {
      if (f.type() == "ev") out.push_back(std::move(f));
    }
    c.out->frames.clear();
    return out;
  }

  wire::Message send(Client& c, const std::string& to, const std::string& text,
                     const std::string& msg_id) {
    wire::MapWriter f;
    f.add("to", to).add("msg_id", msg_id).add_bin("body", text);
    return request(c, f, "send");
  }

  wire::Message rel(Client& c, const std::string& type, const std::string& who) {
    wire::MapWriter f;
    f.add("user", who);
    return request(c, f, type);
  }

  Core& core() { return *core_; }
  store::Database& db() { return *db_; }
  FakeClock clock;

 private:
  std::filesystem::path path_;
  SyncPasswords passwords_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<Core> core_;
};

std::string code(const wire::Message& m) { return m.root().str_or("code", "").value(); }
bool ok(const wire::Message& m) { return m.root().boolean("ok").value(); }

void befriend(Harness& h, Client& a, const std::string& a_addr, Client& b,
              const std::string& b_addr) {
  REQUIRE(ok(h.rel(a, "friend_request", b_addr)));
  REQUIRE(ok(h.rel(b, "friend_accept", a_addr)));
}

}  // namespace

TEST_CASE("login: right password, wrong password, unknown user, rate limit") {
  Harness h;
  h.add_user("alice");
  h.add_user("bob");
  Client c = h.connect("192.0.2.1");
  wire::MapWriter f;
  f.add("user", "alice@example.org").add("password", "wrong");
  REQUIRE(code(h.request(c, f, "login")) == "bad_credentials");
  wire::MapWriter u;
  u.add("user", "nobody@example.org").add("password", "x");
  REQUIRE(code(h.request(c, u, "login")) == "bad_credentials");
  for (int i = 0; i < 4; ++i) REQUIRE(code(h.request(c, f, "login")) == "bad_credentials");
  // Five failures for this address from this source: even the right password is refused here
  // for the window.
  wire::MapWriter right;
  right.add("user", "alice@example.org").add("password", "pw-alice");
  auto limited = h.request(c, right, "login");
  REQUIRE(code(limited) == "rate_limited");
  REQUIRE(*limited.root().uint("retry_after_ms") > 0);
  // Another user from the same source, and the owner from another source, are not limited by
  // that (the source and the address have failures left).
  wire::MapWriter bob;
  bob.add("user", "bob@example.org").add("password", "pw-bob");
  REQUIRE(ok(h.request(c, bob, "login")));
  Client other = h.connect("192.0.2.2");
  REQUIRE(ok(h.request(other, right, "login")));
  h.clock.now += 61'000;
  Client again = h.connect("192.0.2.1");
  REQUIRE(ok(h.request(again, right, "login")));
}

TEST_CASE("login attempts count from their start; bounds per source and per account") {
  // Issue 14 item 3: the old node checked the limit at the start and counted after the hash,
  // so guesses in flight together were all checked.
  struct HeldPasswords : PasswordWork {
    std::vector<std::pair<bool, std::function<void(bool)>>> held;
    void verify(std::string hash, std::string pw, std::function<void(bool)> done) override {
      held.emplace_back(crypto::verify_password(hash, pw), std::move(done));
    }
    void release() {
      auto all = std::move(held);
      held.clear();
      for (auto& [result, done] : all) done(result);
    }
  };
  crypto::init();
  const auto path = std::filesystem::temp_directory_path() /
                    ("parley-login-test-" + crypto::hex_encode(crypto::random_bytes(6)) + ".db");
  {
    auto db = std::move(store::Database::open(path.string()).value());
    REQUIRE(db->migrate(store::node_migrations()).ok());
    NodeConfig config;
    config.name = "example.org";
    config.password_strength = crypto::PasswordStrength::kTestOnlyMinimal;
    config.login_failures_per_window = 5;
    config.login_failures_per_source = 8;
    config.login_failures_per_account = 12;
    FakeClock clock;
    HeldPasswords passwords;
    Core core(config, *db, clock, passwords, Harness::hash("dummy"));
    REQUIRE(core.add_user("alice", Harness::hash("pw-alice")).ok());
    auto attempt = [&](const std::string& source, const std::string& pw) {
      auto out = std::make_shared<FakeOutlet>();
      const ConnId id = core.on_connect(out, source);
      wire::MapWriter w;
      w.add("t", "login").add("id", 1).add("user", "alice@example.org").add("password", pw);
      core.on_frame(id, *wire::Message::parse(w.finish()));
      return out;
    };
    auto answer = [](const std::shared_ptr<FakeOutlet>& out) {
      REQUIRE(out->frames.size() >= 1);
      return out->frames.front().root().str_or("code", "ok").value();
    };
    // 50 guesses at once from one source: 5 go to the password check, 45 are refused at once.
    std::vector<std::shared_ptr<FakeOutlet>> guesses;
    for (int i = 0; i < 50; ++i) guesses.push_back(attempt("198.51.100.7", "guess"));
    REQUIRE(passwords.held.size() == 5);
    int refused = 0;
    for (auto& g : guesses) {
      if (g->frames.empty()) continue;
      REQUIRE(answer(g) == "rate_limited");
      REQUIRE(*g->frames.front().root().uint("retry_after_ms") > 0);
      ++refused;
    }
    REQUIRE(refused == 45);
    passwords.release();
    // The owner from elsewhere: in flight, then a success gives its count back.
    auto owner = attempt("203.0.113.1", "pw-alice");
    REQUIRE(passwords.held.size() == 1);
    passwords.release();
    REQUIRE(answer(owner) == "ok");
    // Guesses from other sources up to the account's looser bound (12, 5 used): 7 more.
    int checked = 0;
    for (int i = 0; i < 20; ++i) {
      auto g = attempt("192.0.2." + std::to_string(10 + i / 2), "guess");
      if (g->frames.empty()) ++checked;
      passwords.release();
    }
    REQUIRE(checked == 7);
    // The account is at its bound for password logins now; its owner's token still resumes.
    auto limited = attempt("203.0.113.1", "pw-alice");
    REQUIRE(answer(limited) == "rate_limited");
    auto re = owner->frames.front().root().str("token");
    REQUIRE(re.ok());
    auto resumer = std::make_shared<FakeOutlet>();
    const ConnId rid = core.on_connect(resumer, "198.51.100.7");
    wire::MapWriter rw;
    rw.add("t", "resume").add("id", 1).add("token", *re);
    core.on_frame(rid, *wire::Message::parse(rw.finish()));
    REQUIRE(answer(resumer) == "ok");
    clock.now += 61'000;
    auto later = attempt("198.51.100.7", "pw-alice");
    passwords.release();
    REQUIRE(answer(later) == "ok");
  }
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
}

TEST_CASE("the connection hears it is authenticated before the login or resume answer") {
  // The gateway raises its frame limit on Outlet::authenticated: it must come before the answer
  // the client waits for (the old order, answer first, raced with the client's next frame).
  struct OrderOutlet : FakeOutlet {
    std::vector<std::string> order;
    void send(std::string payload) override {
      order.push_back(wire::Message::parse(payload)->type());
      FakeOutlet::send(std::move(payload));
    }
    void authenticated() override { order.push_back("authenticated"); }
  };
  Harness h;
  h.add_user("alice");
  auto out = std::make_shared<OrderOutlet>();
  const ConnId id = h.core().on_connect(out, "10.0.0.9");
  wire::MapWriter w;
  w.add("t", "login").add("id", 1).add("user", "alice@example.org").add("password", "pw-alice");
  h.core().on_frame(id, *wire::Message::parse(w.finish()));
  REQUIRE(out->order.size() >= 2);
  CHECK(out->order[0] == "authenticated");
  CHECK(out->order[1] == "re");
  const std::string token = *out->frames.front().root().str("token");
  auto again = std::make_shared<OrderOutlet>();
  const ConnId id2 = h.core().on_connect(again, "10.0.0.9");
  wire::MapWriter r;
  r.add("t", "resume").add("id", 1).add("token", token);
  h.core().on_frame(id2, *wire::Message::parse(r.finish()));
  REQUIRE(again->order.size() >= 2);
  CHECK(again->order[0] == "authenticated");
  CHECK(again->order[1] == "re");
}

TEST_CASE("requests before authentication are refused; resume with a token works") {
  Harness h;
  h.add_user("alice");
  Client c = h.connect();
  REQUIRE(code(h.request(c, wire::MapWriter(), "convs")) == "unauthenticated");
  REQUIRE(ok(h.request(c, wire::MapWriter(), "ping")));
  wire::MapWriter f;
  f.add("user", "alice@example.org").add("password", "pw-alice");
  auto re = h.request(c, f, "login");
  const std::string token = *re.root().str("token");
  REQUIRE(token.size() == 43);
  Client again = h.connect();
  wire::MapWriter r;
  r.add("token", token);
  auto resumed = h.request(again, r, "resume");
  REQUIRE(ok(resumed));
  REQUIRE(*resumed.root().str("user") == "alice@example.org");
  wire::MapWriter bad;
  bad.add("token", token + "x");
  Client third = h.connect();
  REQUIRE(code(h.request(third, bad, "resume")) == "bad_credentials");
}

TEST_CASE("friends policy, sending, offline backlog, cursor and receipts") {
  Harness h;
  h.add_user("alice");
  h.add_user("bob");
  Client a = h.login("alice");
  Client b = h.login("bob");
  REQUIRE(code(h.send(a, "bob@example.org", "hi", "m0")) == "not_allowed");
  befriend(h, a, "alice@example.org", b, "bob@example.org");
  h.events(a);
  h.events(b);
  h.core().on_disconnect(b.id);  // bob goes offline

  for (int i = 1; i <= 3; ++i) {
    auto re = h.send(a, "bob@example.org", "m" + std::to_string(i), "id" + std::to_string(i));
    REQUIRE(ok(re));
    REQUIRE(*re.root().uint("cseq") == static_cast<std::uint64_t>(i));
  }
  // Bob's device reconnects with its token: backlog in order, then synced.
  Client b2 = h.login("bob", "d2");  // a new device starts at cursor 0: sees the whole stream
  auto evs = h.events(b2);
  std::vector<std::string> bodies;
  for (auto& e : evs) {
    if (*e.root().str("kind") == "msg") bodies.push_back(*e.root().bin("body", 100));
  }
  REQUIRE(bodies == std::vector<std::string>{"m1", "m2", "m3"});
  const auto last = *evs.back().root().uint("seq");

  // Acknowledging makes the messages delivered: alice (live) gets receipts pushed.
  wire::MapWriter ack;
  ack.add("upto", last);
  REQUIRE(*h.request(b2, ack, "ack").root().uint("cursor") == last);
  wire::MapWriter beyond;
  beyond.add("upto", last + 5);
  REQUIRE(code(h.request(b2, beyond, "ack")) == "bad_request");
  auto receipts = h.events(a);
  int delivered = 0;
  for (auto& e : receipts) {
    if (*e.root().str("kind") == "receipt" && *e.root().str("status") == "delivered") ++delivered;
  }
  REQUIRE(delivered == 3);
  // A second device acknowledging again adds no receipts.
  Client b3 = h.login("bob", "d3");
  h.events(b3);
  wire::MapWriter ack3;
  ack3.add("upto", last);
  REQUIRE(ok(h.request(b3, ack3, "ack")));
  REQUIRE(h.events(a).empty());

  // Read marks: one receipt with upto; unread drops to zero.
  wire::MapWriter rd;
  rd.add("conv", *evs.back().root().str("conv")).add("upto", 2);
  REQUIRE(ok(h.request(b2, rd, "read")));
  auto reads = h.events(a);
  REQUIRE(reads.size() == 1);
  REQUIRE(*reads[0].root().str("status") == "read");
  REQUIRE(*reads[0].root().uint("upto") == 2);
  auto convs = h.request(b2, wire::MapWriter(), "convs");
  REQUIRE(*(*convs.root().array("convs"))[0].uint("unread") == 1);
}

TEST_CASE("idempotent send and conflicting reuse of a msg_id") {
  Harness h(DirectMessagePolicy::kOrganization);
  h.add_user("alice");
  h.add_user("bob");
  Client a = h.login("alice");
  auto first = h.send(a, "bob@example.org", "hello", "same");
  auto again = h.send(a, "bob@example.org", "hello", "same");
  REQUIRE_FALSE(*first.root().boolean("duplicate"));
  REQUIRE(*again.root().boolean("duplicate"));
  REQUIRE(*again.root().uint("cseq") == *first.root().uint("cseq"));
  REQUIRE(code(h.send(a, "bob@example.org", "other", "same")) == "conflict");
  REQUIRE(code(h.send(a, "alice@example.org", "me", "self")) == "bad_request");
  REQUIRE(code(h.send(a, "nobody@example.org", "x", "n")) == "not_found");
  wire::MapWriter big;
  big.add("to", "bob@example.org").add("msg_id", "big").add_bin("body", std::string(1001, 'x'));
  REQUIRE(code(h.request(a, big, "send")) == "payload_too_large");
  Client b = h.login("bob");
  int msgs = 0;
  for (auto& e : h.events(b)) msgs += *e.root().str("kind") == "msg";
  REQUIRE(msgs == 1);
}

TEST_CASE("relationship rules") {
  Harness h;
  for (const char* n : {"alice", "bob", "carol"}) h.add_user(n);
  Client a = h.login("alice"), b = h.login("bob"), c = h.login("carol");
  const std::string A = "alice@example.org", B = "bob@example.org", C = "carol@example.org";

  REQUIRE(code(h.rel(a, "friend_accept", B)) == "not_found");
  REQUIRE(code(h.rel(a, "friend_request", A)) == "bad_request");
  REQUIRE(code(h.rel(a, "friend_request", "zed@example.org")) == "not_found");
  REQUIRE(ok(h.rel(a, "friend_request", B)));
  REQUIRE(ok(h.rel(a, "friend_request", B)));  // repeat: no change
  REQUIRE(code(h.rel(a, "friend_cancel", C)) == "not_found");
  // Crossing requests: bob's request accepts alice's.
  REQUIRE(*h.rel(b, "friend_request", A).root().str("state") == "friend");
  auto lists = h.request(a, wire::MapWriter(), "friends");
  REQUIRE(lists.root().array("friends")->size() == 1);
  REQUIRE(ok(h.rel(a, "friend_remove", B)));
  REQUIRE(h.request(b, wire::MapWriter(), "friends").root().array("friends")->empty());

  // Decline and cancel.
  REQUIRE(ok(h.rel(a, "friend_request", C)));
  REQUIRE(ok(h.rel(c, "friend_decline", A)));
  REQUIRE(h.request(a, wire::MapWriter(), "friends").root().array("outgoing")->empty());
  REQUIRE(ok(h.rel(a, "friend_request", C)));
  REQUIRE(ok(h.rel(a, "friend_cancel", C)));
  REQUIRE(h.request(c, wire::MapWriter(), "friends").root().array("incoming")->empty());

  // Block: removes the friendship silently; requests from the blocked user vanish.
  befriend(h, a, A, b, B);
  h.events(b);
  REQUIRE(ok(h.rel(a, "block", B)));
  REQUIRE(h.events(b).empty());  // bob learns nothing
  REQUIRE(h.request(b, wire::MapWriter(), "friends").root().array("friends")->empty());
  REQUIRE(ok(h.rel(b, "friend_request", A)));
  REQUIRE(h.request(a, wire::MapWriter(), "friends").root().array("incoming")->empty());
  REQUIRE(code(h.rel(a, "friend_request", B)) == "not_allowed");
  REQUIRE(h.request(a, wire::MapWriter(), "blocks").root().array("blocked")->size() == 1);
  REQUIRE(ok(h.rel(a, "unblock", B)));
  REQUIRE(code(h.rel(a, "unblock", B)) == "not_found");
}

TEST_CASE("blocked sender's messages are dropped at the recipient's node") {
  Harness h(DirectMessagePolicy::kOrganization);
  h.add_user("alice");
  h.add_user("bob");
  Client a = h.login("alice"), b = h.login("bob");
  REQUIRE(ok(h.rel(b, "block", "alice@example.org")));
  h.events(a);
  h.events(b);
  REQUIRE(ok(h.send(a, "bob@example.org", "hidden", "x1")));
  REQUIRE(h.events(b).empty());
  auto own = h.events(a);  // alice's own stream has her message, and no receipt ever follows
  REQUIRE(own.size() == 1);
  REQUIRE(h.request(b, wire::MapWriter(), "convs").root().array("convs")->empty());
}

TEST_CASE("suspend closes live sessions and blocks login; delete removes the user") {
  Harness h;
  h.add_user("alice");
  Client a = h.login("alice");
  REQUIRE(h.core().set_suspended("alice", true).ok());
  REQUIRE(a.out->closed_code == "suspended");
  Client again = h.connect();
  wire::MapWriter f;
  f.add("user", "alice@example.org").add("password", "pw-alice");
  REQUIRE(code(h.request(again, f, "login")) == "suspended");
  REQUIRE(h.core().set_suspended("nobody", true).error().code == "not_found");
  REQUIRE(h.core().set_suspended("alice", false).ok());
  Client b = h.login("alice");
  REQUIRE(h.core().delete_user("alice").ok());
  REQUIRE(b.out->closed_code == "logged_out");
  REQUIRE(h.core().list_users()->empty());
  REQUIRE(h.core().add_user("Bad Name", "x").error().code == "bad_request");
}

TEST_CASE("backlog is paged: a page, then wait for drain, then the rest") {
  Harness h(DirectMessagePolicy::kOrganization);
  h.add_user("alice");
  h.add_user("bob");
  Client a = h.login("alice");
  for (int i = 0; i < 150; ++i) REQUIRE(ok(h.send(a, "bob@example.org", "x", std::to_string(i))));
  Client b = h.login("bob");
  REQUIRE(h.events(b).size() == 64);
  REQUIRE(b.out->drain_requests == 1);
  h.core().on_drained(b.id);
  REQUIRE(h.events(b).size() == 64);
  h.core().on_drained(b.id);
  REQUIRE(b.out->frames.back().type() == "synced");
  REQUIRE(*b.out->frames.back().root().uint("seq") == 150);
  REQUIRE(h.events(b).size() == 22);
  REQUIRE(b.out->drain_requests == 2);
}

TEST_CASE("a full disk fails the send cleanly; nothing half-stored; the retry succeeds") {
  Harness h(DirectMessagePolicy::kOrganization);
  h.add_user("alice");
  h.add_user("bob");
  Client a = h.login("alice");
  REQUIRE(ok(h.send(a, "bob@example.org", "fits", "m1")));
  // Freeze the database at its current size: the next page allocation fails with SQLITE_FULL.
  auto pages = h.db().prepare("PRAGMA page_count");
  REQUIRE(*pages->step());
  const auto count = pages->column_int64(0);
  REQUIRE(h.db().exec("PRAGMA max_page_count = " + std::to_string(count)).ok());
  const std::string big(900, 'x');
  std::string failed_code;
  for (int i = 0; i < 200 && failed_code.empty(); ++i) {
    auto re = h.send(a, "bob@example.org", big, "fill" + std::to_string(i));
    if (!ok(re)) failed_code = code(re);
  }
  REQUIRE(failed_code == "disk_full");
  REQUIRE(ok(h.request(a, wire::MapWriter(), "ping")));  // the connection carries on
  REQUIRE(h.db().exec("PRAGMA max_page_count = 1073741823").ok());
  // Every committed message is intact and ordered; the failed one was not stored, so its retry
  // is a fresh send, not a duplicate.
  Client b = h.login("bob");
  std::vector<std::uint64_t> cseqs;
  for (auto& e : h.events(b)) cseqs.push_back(*e.root().uint("cseq"));
  for (std::size_t i = 0; i < cseqs.size(); ++i) REQUIRE(cseqs[i] == i + 1);
  const auto stored = cseqs.size();
  auto retry = h.send(a, "bob@example.org", big, "fill" + std::to_string(stored - 1));
  REQUIRE(ok(retry));
  REQUIRE_FALSE(*retry.root().boolean("duplicate"));
  REQUIRE(*retry.root().uint("cseq") == stored + 1);
}

TEST_CASE("directory: exact lookups only, display names, misses rate limited per asker") {
  Harness h;
  h.add_user("alice");
  h.add_user("bob");
  auto a = h.login("alice");
  auto b = h.login("bob");
  wire::MapWriter name;
  name.add("display_name", "Bob B.");
  REQUIRE(ok(h.request(b, name, "profile")));
  wire::MapWriter bad_name;
  bad_name.add("display_name", std::string("x\x1b[2J", 5));
  CHECK(code(h.request(b, bad_name, "profile")) == "bad_request");

  auto lookup = [&](const std::string& who) {
    wire::MapWriter f;
    f.add("address", who);
    return h.request(a, f, "lookup");
  };
  auto found = lookup("bob@example.org");
  REQUIRE(ok(found));
  CHECK(*found.root().boolean("exists"));
  CHECK(*found.root().str("display_name") == "Bob B.");
  for (int i = 0; i < 30; ++i) {
    auto miss = lookup("nobody" + std::to_string(i) + "@example.org");
    REQUIRE(ok(miss));
    CHECK_FALSE(*miss.root().boolean("exists"));
  }
  // Guessing further is refused, also for names that exist, until the window passes.
  CHECK(code(lookup("bob@example.org")) == "rate_limited");
  CHECK(ok(h.request(
      b,
      [] {
        wire::MapWriter f;
        f.add("address", "alice@example.org");
        return f;
      }(),
      "lookup")));  // another asker is not affected
  h.clock.now += 61'000;
  CHECK(ok(lookup("bob@example.org")));
  // No federation configured: a remote user cannot be looked up, and says why.
  CHECK(code(lookup("carol@other.example")) == "unavailable");
}

TEST_CASE("block, friend requests and sends to unknown users share the lookup budget") {
  // Issue 14 item 19c: the old node answered `block`/`friend_request` with not_found for an
  // unknown user and ok for a known one however often it was asked, so existence leaked past
  // the lookup limit.
  Harness h(DirectMessagePolicy::kOrganization);
  h.add_user("alice");
  h.add_user("bob");
  h.add_user("carol");
  auto a = h.login("alice");
  auto c = h.login("carol");
  for (int i = 0; i < 30; ++i) {
    const std::string who = "nobody" + std::to_string(i) + "@example.org";
    const char* type = i % 3 == 0 ? "block" : i % 3 == 1 ? "friend_request" : "friend_accept";
    INFO(type << " " << who);
    REQUIRE(code(h.rel(a, type, who)) == "not_found");
  }
  // The budget is spent: known and unknown users get the same answer, and so does a send.
  for (const char* who : {"bob@example.org", "nobody-else@example.org"}) {
    for (const char* type : {"block", "friend_request", "friend_remove"}) {
      INFO(type << " " << who);
      auto re = h.rel(a, type, who);
      REQUIRE(code(re) == "rate_limited");
      REQUIRE(*re.root().uint("retry_after_ms") > 0);
      REQUIRE(*re.root().uint("retry_after_ms") <= 60'000);
    }
    INFO("send " << who);
    REQUIRE(code(h.send(a, who, "x", std::string("m-") + who)) == "rate_limited");
  }
  wire::MapWriter f;
  f.add("address", "bob@example.org");
  REQUIRE(code(h.request(a, f, "lookup")) == "rate_limited");  // one budget for all of them
  // Remote addresses and other askers are not affected; unblock names no one.
  REQUIRE(ok(h.rel(c, "friend_request", "bob@example.org")));
  REQUIRE(code(h.rel(a, "unblock", "bob@example.org")) == "not_found");
  h.clock.now += 61'000;
  REQUIRE(ok(h.rel(a, "friend_request", "bob@example.org")));
  REQUIRE(ok(h.send(a, "bob@example.org", "x", "after")));
}

TEST_CASE("key directory: publish, query, one-time prekeys handed out exactly once") {
  Harness h;
  h.add_user("alice");
  h.add_user("bob");
  auto a = h.login("alice");
  auto b1 = h.login("bob", "phone");
  auto b2 = h.login("bob", "laptop");
  auto publish = [&](Client& c, const std::string& cert, std::uint64_t first_id, int n) {
    wire::MapWriter f;
    f.add_bin("identity", std::string(32, 'I'))
        .add_bin("cert", cert)
        .add_bin("signed_prekey", "spk-" + cert);
    wire::ArrayWriter keys;
    for (int i = 0; i < n; ++i) {
      wire::MapWriter k;
      k.add("id", first_id + i).add_bin("key", cert + "-otk-" + std::to_string(first_id + i));
      keys.push(k);
    }
    f.add("one_time", keys);
    return h.request(c, f, "keys_publish");
  };
  auto claim = [&](const std::string& kind) {
    wire::MapWriter f;
    f.add("address", "bob@example.org");
    return h.request(a, f, kind);
  };
  CHECK(code(claim("keys_query")) == "not_found");  // nothing published yet
  auto p1 = publish(b1, "phone", 1, 2);
  REQUIRE(ok(p1));
  CHECK(*p1.root().uint("one_time_left") == 2);
  REQUIRE(ok(publish(b2, "laptop", 10, 1)));
  // Ids only grow: re-publishing an id (or a lower one) is refused, nothing of it stored.
  CHECK(code(publish(b1, "phone", 2, 1)) == "conflict");

  auto q = claim("keys_query");
  REQUIRE(ok(q));
  auto devices = *q.root().array("devices");
  REQUIRE(devices.size() == 2);
  CHECK(*devices[0].bin("cert", 100) == "phone");
  CHECK(*devices[0].uint("one_time_left") == 2);
  CHECK(*devices[1].uint("one_time_left") == 1);

  std::set<std::string> handed_out;
  for (int round = 0; round < 3; ++round) {
    auto c = claim("keys_claim");
    REQUIRE(ok(c));
    const auto claimed = *c.root().array("devices");
    for (const auto& d : claimed) {
      CHECK(*d.bin("signed_prekey", 100) == "spk-" + *d.bin("cert", 100));
      if (!d.has("one_time")) continue;  // exhausted: the signed prekey alone
      const auto key = *(*d.map("one_time")).bin("key", 100);
      CHECK(handed_out.insert(key).second);  // never the same key twice
    }
  }
  CHECK(handed_out == std::set<std::string>{"phone-otk-1", "phone-otk-2", "laptop-otk-10"});
  auto after = claim("keys_query");
  const auto after_devices = *after.root().array("devices");
  for (const auto& d : after_devices) CHECK(*d.uint("one_time_left") == 0);
  // Replenishing continues above the old ids.
  REQUIRE(ok(publish(b1, "phone", 3, 1)));
  wire::MapWriter only_phone;
  only_phone.add("address", "bob@example.org");
  wire::ArrayWriter ids;
  ids.push(*devices[0].uint("device"));  // the phone (listed first: lower device id)
  only_phone.add("devices", ids);
  auto c = h.request(a, only_phone, "keys_claim");
  REQUIRE(ok(c));
  const auto phone = *c.root().array("devices");
  REQUIRE(phone.size() == 1);
  CHECK(*(*phone[0].map("one_time")).bin("key", 100) == "phone-otk-3");
}

namespace {

std::map<std::string, std::int64_t> outbox_by_dest(Harness& h) {
  std::map<std::string, std::int64_t> out;
  auto st = h.db().prepare("SELECT dest, count(*) FROM fed_outbox GROUP BY dest");
  REQUIRE(st.ok());
  while (*st->step()) out[st->column_text(0)] = st->column_int64(1);
  return out;
}

wire::Message group_request(Harness& h, Client& c, const std::string& type,
                            const std::vector<std::pair<std::string, std::string>>& fields) {
  wire::MapWriter f;
  for (const auto& [k, v] : fields) f.add(k, v);
  return h.request(c, f, type);
}

// The pull answer for node `asker` holding nothing of `conv`: the kinds of the events it gets.
std::vector<std::string> pulled_kinds(Harness& h, const std::string& asker, const std::string& conv,
                                      std::string* error = nullptr) {
  wire::MapWriter req;
  req.add("conv", conv).add("clock", wire::MapWriter());
  auto msg = wire::Message::parse(req.finish());
  auto answer = h.core().conv_pull_answer(asker, msg->root());
  if (!answer.ok()) {
    if (error) *error = answer.error().code;
    return {};
  }
  auto parsed = wire::Message::parse(*answer);
  std::vector<std::string> kinds;
  const auto events = parsed->root().array("events");
  for (const auto& v : *events) {
    auto se = conv::SignedEvent::decode(*v.as_bin(1 << 20));
    REQUIRE(se.ok());
    kinds.push_back(conv::to_string(se->event.kind));
  }
  return kinds;
}

std::string conv_payload(const conv::SignedEvent& se) {
  wire::MapWriter p;
  p.add("type", "conv").add_bin("ev", se.encode());
  return p.finish();
}

}  // namespace

TEST_CASE(
    "groups: one copy per node, pulls answered by membership, removed members' nodes capped") {
  Harness h;
  const auto key = crypto::SigningKey::generate();
  h.core().set_node_key(&key);
  h.add_user("ann");
  h.add_user("bob");
  Client ann = h.login("ann"), bob = h.login("bob");
  wire::MapWriter f;
  wire::ArrayWriter members;
  for (const char* m : {"bob@example.org", "x@b.example", "y@b.example", "z@c.example"}) {
    members.push(m);
  }
  f.add("name", "team").add("members", members);
  auto created = h.request(ann, f, "group_create");
  REQUIRE(ok(created));
  const std::string conv = *created.root().str("conv");
  CHECK(conv.rfind("g:", 0) == 0);
  CHECK(conv.size() == 34);
  // Two members on b.example, one on c.example: one copy each.
  CHECK(outbox_by_dest(h) ==
        std::map<std::string, std::int64_t>{{"b.example", 1}, {"c.example", 1}});
  wire::MapWriter m;
  m.add("conv", conv).add("kind", "message").add_bin("body", "ciphertext");
  REQUIRE(ok(h.request(ann, m, "group_event")));
  CHECK(outbox_by_dest(h) ==
        std::map<std::string, std::int64_t>{{"b.example", 2}, {"c.example", 2}});
  // A plain member may not add or remove; a stranger cannot see the group at all.
  CHECK(code(group_request(h, bob, "group_event",
                           {{"conv", conv}, {"kind", "remove"}, {"target", "ann@example.org"}})) ==
        "not_allowed");
  h.add_user("cid");
  Client cid = h.login("cid");
  CHECK(code(group_request(h, cid, "group_members", {{"conv", conv}})) == "not_found");

  CHECK(pulled_kinds(h, "b.example", conv) == std::vector<std::string>{"create", "message"});
  std::string error;
  CHECK(pulled_kinds(h, "d.example", conv, &error).empty());
  CHECK(error == "forbidden");

  // z is removed: c.example hears of the removal, then nothing more; a pull gives it the history
  // up to the removal only.
  REQUIRE(ok(group_request(h, ann, "group_event",
                           {{"conv", conv}, {"kind", "remove"}, {"target", "z@c.example"}})));
  REQUIRE(ok(h.request(ann, m, "group_event")));
  CHECK(outbox_by_dest(h) ==
        std::map<std::string, std::int64_t>{{"b.example", 4}, {"c.example", 3}});
  CHECK(pulled_kinds(h, "c.example", conv) ==
        std::vector<std::string>{"create", "message", "remove"});
  CHECK(pulled_kinds(h, "b.example", conv).size() == 4);

  // bob's stream got every event; his history is the total order.
  std::vector<std::string> kinds;
  for (const auto& ev : h.events(bob)) {
    if (*ev.root().str("kind") == "gev") kinds.push_back(*ev.root().map("event")->str("kind"));
  }
  CHECK(kinds == std::vector<std::string>{"create", "message", "remove", "message"});
  auto hist = group_request(h, bob, "group_history", {{"conv", conv}});
  REQUIRE(ok(hist));
  CHECK(hist.root().uint("total").value() == 4);
  auto groups = h.request(bob, wire::MapWriter(), "groups");
  REQUIRE(groups.root().array("groups")->size() == 1);
  CHECK(*(*groups.root().array("groups"))[0].str("name") == "team");
  CHECK(*(*groups.root().array("groups"))[0].str("role") == "member");
}

TEST_CASE("groups: events from other nodes are checked, waiting ones survive a restart") {
  Harness h;
  const auto key = crypto::SigningKey::generate();
  h.core().set_node_key(&key);
  h.add_user("ann");
  Client ann = h.login("ann");
  const auto b_key = crypto::SigningKey::generate(), forger = crypto::SigningKey::generate();
  REQUIRE(federation::PeerStore(h.db())
              .add("b.example", "http://127.0.0.1:1", b_key.public_key(), 0)
              .ok());
  conv::Replica b("g:00000000000000000000000000000001", "b.example");
  auto create = *b.create(conv::Kind::kCreate, "x@b.example", "from b", "", "ann@example.org\n", 1);
  auto m1 = *b.create(conv::Kind::kMessage, "x@b.example", "", "", "one", 2);
  auto m2 = *b.create(conv::Kind::kMessage, "x@b.example", "", "", "two", 3);
  auto m3 = *b.create(conv::Kind::kMessage, "x@b.example", "", "", "three", 4);
  auto apply = [&](const std::string& from, std::int64_t id, const conv::SignedEvent& se) {
    return h.core().apply_federation(from, 0, {{id, conv_payload(se)}});
  };
  // An event of a group we do not hold that does not bring one of our users in: ignored.
  REQUIRE(apply("b.example", 1, conv::sign_event(m1, b_key)).ok());
  CHECK(h.events(ann).empty());
  REQUIRE(apply("b.example", 2, conv::sign_event(create, b_key)).ok());
  // Relayed by c.example with a signature b's key did not make: refused.
  REQUIRE(apply("c.example", 1, conv::sign_event(m1, forger)).ok());
  auto evs = h.events(ann);
  REQUIRE(evs.size() == 1);
  CHECK(*evs[0].root().map("event")->str("kind") == "create");
  // m3 waits for m2; it is stored, so a restart keeps it.
  REQUIRE(apply("b.example", 3, conv::sign_event(m1, b_key)).ok());
  REQUIRE(apply("b.example", 4, conv::sign_event(m3, b_key)).ok());
  CHECK(h.events(ann).size() == 1);  // m1 only
  // b signs a second, different event for m1's place: equivocation, kept as evidence.
  conv::Event fork = m1;
  fork.body = "not one";
  REQUIRE(apply("b.example", 5, conv::sign_event(fork, b_key)).ok());
  CHECK(h.events(ann).empty());
  auto list = h.core().conv_list();
  REQUIRE(list->size() == 1);
  CHECK((*list)[0].buffered == 1);
  CHECK((*list)[0].events == 2);
  CHECK((*list)[0].equivocations == 1);
  // A new core over the same database (a restart), then m2, relayed by another node with b's
  // signature: m2 and the waiting m3 apply.
  ConvStore fresh(h.db(), "example.org");
  auto r = fresh.find(create.conv);
  REQUIRE(r.ok());
  REQUIRE(*r != nullptr);
  CHECK((*r)->buffered() == 1);
  REQUIRE(apply("c.example", 2, conv::sign_event(m2, b_key)).ok());
  std::vector<std::string> got;
  for (const auto& ev : h.events(ann)) got.push_back(*ev.root().map("event")->bin("body", 100));
  CHECK(got == std::vector<std::string>{"two", "three"});
}

TEST_CASE("group commit: answers leave after the batch commits; a failed batch answers errors") {
  Harness h(DirectMessagePolicy::kAnyone);
  h.add_user("ann");
  h.add_user("bob");
  Client ann = h.login("ann"), bob = h.login("bob");
  h.events(bob);
  auto count = [&] {
    auto st = std::move(h.db().prepare("SELECT count(*) FROM messages").value());
    (void)st.step();
    return st.column_int64(0);
  };
  auto frame = [](const char* id, const char* text) {
    wire::MapWriter w;
    w.add("t", "send").add("id", std::uint64_t{100}).add("to", "bob@example.org");
    w.add("msg_id", id).add_bin("body", text);
    return *wire::Message::parse(w.finish());
  };
  ann.out->frames.clear();
  h.core().begin_batch();
  h.core().on_frame(ann.id, frame("m1", "one"));
  h.core().on_frame(ann.id, frame("m2", "two"));
  CHECK(ann.out->frames.empty());  // nothing leaves before the commit
  CHECK(bob.out->frames.empty());
  h.core().end_batch();
  auto responses = [&] {
    std::vector<wire::Message> out;
    for (auto& f : ann.out->frames) {
      if (f.type() == "re") out.push_back(std::move(f));
    }
    ann.out->frames.clear();
    return out;
  };
  auto re = responses();
  REQUIRE(re.size() == 2);
  CHECK(ok(re[0]));
  CHECK(ok(re[1]));
  CHECK(h.events(bob).size() == 2);
  CHECK(count() == 2);

  // The database drops the batch (say, the disk filled): the sender hears the error, nothing is
  // stored, and no connection is closed (issue 14 item 17: the old node closed both with
  // `bye internal`); the pushes of what was not stored are dropped and the next stored event
  // follows without a gap.
  ann.out->frames.clear();
  h.core().begin_batch();
  h.core().on_frame(ann.id, frame("m3", "three"));
  REQUIRE(h.db().exec("ROLLBACK").ok());
  h.core().end_batch();
  re = responses();
  REQUIRE(re.size() == 1);
  CHECK_FALSE(ok(re[0]));
  CHECK(code(re[0]) == "storage");
  CHECK(bob.out->closed_code.empty());
  CHECK(ann.out->closed_code.empty());
  CHECK(h.events(bob).empty());
  CHECK(h.events(ann).empty());
  CHECK(count() == 2);
  h.core().begin_batch();
  h.core().on_frame(ann.id, frame("m3", "three"));
  h.core().end_batch();
  re = responses();
  REQUIRE(re.size() == 1);
  CHECK(ok(re[0]));
  auto got = h.events(bob);
  REQUIRE(got.size() == 1);
  CHECK(*got[0].root().uint("seq") == 3);
  CHECK(*got[0].root().bin("body", 100) == "three");
}

TEST_CASE("send rate limit: burst, rate_limited with retry_after_ms, per-user override, reload") {
  Harness h(DirectMessagePolicy::kOrganization);
  h.add_user("alice");
  h.add_user("bob");
  NodeConfig fresh = h.core().config();
  fresh.messages_per_minute = 60;
  fresh.message_burst = 2;
  h.core().reload(fresh);
  auto a = h.login("alice");
  REQUIRE(ok(h.send(a, "bob@example.org", "1", "m1")));
  REQUIRE(ok(h.send(a, "bob@example.org", "2", "m2")));
  auto refused = h.send(a, "bob@example.org", "3", "m3");
  REQUIRE(code(refused) == "rate_limited");
  CHECK(refused.root().uint("retry_after_ms").value() == 1000);
  CHECK(ok(h.send(a, "bob@example.org", "2", "m2")));  // a resent duplicate costs nothing
  h.clock.now += 1000;
  CHECK(ok(h.send(a, "bob@example.org", "3", "m3")));
  // An override for alice only; back to the default afterwards.
  REQUIRE(h.core().set_send_limit("alice", SendLimit{0, 0, true}).ok());
  for (int i = 0; i < 20; ++i) {
    REQUIRE(ok(h.send(a, "bob@example.org", "u", "u" + std::to_string(i))));
  }
  REQUIRE(h.core().set_send_limit("alice", std::nullopt).ok());
  CHECK(!h.core().send_limit("alice")->override);
  CHECK(code(h.send(a, "bob@example.org", "x", "x1")) == "rate_limited");
}

TEST_CASE("people: kick revokes a device, deactivation refuses logins, erase retires the name") {
  Harness h(DirectMessagePolicy::kOrganization);
  h.add_user("alice");
  h.add_user("bob");
  auto phone = h.login("alice", "phone");
  auto laptop = h.login("alice", "laptop");
  auto b = h.login("bob");
  REQUIRE(ok(h.send(phone, "bob@example.org", "hi", "m1")));
  auto sessions = h.core().list_sessions("alice", false);
  REQUIRE(sessions.ok());
  REQUIRE(sessions->size() == 2);
  CHECK(sessions->front().label == "laptop");  // newest first
  CHECK(sessions->front().connections == std::vector<std::string>{"10.0.0.1"});
  const std::int64_t phone_device = sessions->back().device;
  auto kicked = h.core().kick("alice", phone_device);
  REQUIRE(kicked.ok());
  CHECK(*kicked == std::pair<std::int64_t, std::int64_t>{1, 1});
  CHECK(phone.out->closed_code == "logged_out");
  CHECK(laptop.out->closed_code.empty());
  CHECK(h.core().kick("alice", 9999).error().code == "not_found");
  CHECK(h.core().list_sessions("alice", false)->size() == 1);
  CHECK(h.core().list_sessions("alice", true)->size() == 2);

  REQUIRE(h.core().set_deactivated("alice", true).ok());
  CHECK(laptop.out->closed_code == "deactivated");
  auto again = h.connect();
  wire::MapWriter f;
  f.add("user", "alice@example.org").add("password", "pw-alice").add("device", "d");
  CHECK(code(h.request(again, f, "login")) == "deactivated");
  REQUIRE(h.core().set_deactivated("alice", false).ok());
  auto back = h.login("alice");

  REQUIRE(h.core().erase_user("alice").ok());
  CHECK(back.out->closed_code == "logged_out");
  h.events(b);
  wire::MapWriter hist;
  hist.add("conv", wire::dm_conversation_id("alice@example.org", "bob@example.org"));
  auto history = h.request(b, hist, "history");
  CHECK(history.root().array("messages")->size() == 0);  // alice's message is gone
  CHECK(h.core().add_user("alice", Harness::hash("pw")).error().code == "conflict");
  REQUIRE(h.core().unretire_name("alice").ok());
  CHECK(h.core().add_user("alice", Harness::hash("pw")).ok());
}

TEST_CASE(
    "federation: ids count per origin epoch; a higher epoch starts over, a lower is refused") {
  Harness h;
  // A friend request to a user this node does not have: applied (and dropped) each time.
  const std::string ev = wire::MapWriter()
                             .add("type", "friend")
                             .add("event", "request")
                             .add("from", "x@b.example")
                             .add("to", "nobody@example.org")
                             .finish();
  auto apply = [&](std::uint64_t epoch, std::int64_t id) {
    return h.core().apply_federation("b.example", epoch, {{id, ev}});
  };
  CHECK(*apply(1, 3) == 3);
  CHECK(*apply(1, 2) == 3);  // already applied: a resent transaction
  // b.example was restored from a backup: its ids start again below 3.
  CHECK(*apply(2, 1) == 1);
  CHECK(*apply(2, 2) == 2);
  // A copy still running under the old epoch changes nothing.
  auto stale = apply(1, 10);
  REQUIRE_FALSE(stale.ok());
  CHECK(stale.error().code == "stale_epoch");
  CHECK(*apply(2, 2) == 2);
}

TEST_CASE("federation: a bad event is dropped, the rest of its transaction applied") {
  Harness h;
  Metrics metrics;
  h.core().set_metrics(&metrics);
  h.add_user("ann");
  auto friend_event = [](const char* event, const char* from, const char* to) {
    return wire::MapWriter()
        .add("type", "friend")
        .add("event", event)
        .add("from", from)
        .add("to", to)
        .finish();
  };
  const std::string request = friend_event("request", "x@b.example", "ann@example.org");
  const std::string self_accept = friend_event("accepted", "x@b.example", "ann@example.org");
  const std::string elsewhere = friend_event("request", "x@b.example", "ann@c.example");
  const std::string bad_group =
      wire::MapWriter().add("type", "conv").add_bin("ev", "not a signed event").finish();
  auto applied = h.core().apply_federation(
      "b.example", 0,
      {{1, "\xc1"}, {2, bad_group}, {3, elsewhere}, {4, request}, {5, self_accept}});
  REQUIRE(applied.ok());
  CHECK(*applied == 5);
  Client ann = h.login("ann");
  auto friends = h.request(ann, wire::MapWriter(), "friends");
  CHECK(friends.root().array("friends")->size() == 0);  // x cannot accept its own request
  REQUIRE(friends.root().array("incoming")->size() == 1);
  CHECK(metrics.federation_drops() ==
        std::map<std::string, std::int64_t>{
            {"bad_request", 2}, {"not_ours", 1}, {"unsolicited_accept", 1}});
  // ann asks y; y's node answers for y: friends.
  REQUIRE(ok(h.rel(ann, "friend_request", "y@b.example")));
  REQUIRE(h.core()
              .apply_federation("b.example", 0,
                                {{6, friend_event("accepted", "y@b.example", "ann@example.org")}})
              .ok());
  friends = h.request(ann, wire::MapWriter(), "friends");
  REQUIRE(friends.root().array("friends")->size() == 1);
  CHECK(*(*friends.root().array("friends"))[0].as_str() == "y@b.example");
  // Speaking for another node's user refuses the whole transaction.
  auto forged = h.core().apply_federation(
      "b.example", 0,
      {{7, request}, {8, friend_event("request", "z@c.example", "ann@example.org")}});
  REQUIRE_FALSE(forged.ok());
  CHECK(forged.error().code == "forbidden");
}

TEST_CASE("federation work: new friend requests per hour; queued events expire") {
  Harness h;
  NodeConfig fresh = h.core().config();
  fresh.friend_requests_per_hour = 2;
  fresh.federation_queue_lifetime_seconds = 60;
  h.core().reload(fresh);
  h.add_user("ann");
  Client ann = h.login("ann");
  REQUIRE(ok(h.rel(ann, "friend_request", "a@x.example")));
  REQUIRE(ok(h.rel(ann, "friend_request", "b@x.example")));
  REQUIRE(ok(h.rel(ann, "friend_request", "a@x.example")));  // still pending: free
  auto over = h.rel(ann, "friend_request", "c@x.example");
  CHECK(code(over) == "rate_limited");
  CHECK(over.root().uint("retry_after_ms").value() == 3'600'000);
  h.events(ann);
  h.clock.now += 59'000;
  CHECK(*h.core().expire_outbox() == 0);
  h.clock.now += 2'000;
  CHECK(*h.core().expire_outbox() == 2);
  CHECK(*h.core().expire_outbox() == 0);
  std::vector<std::string> failed;
  for (const auto& ev : h.events(ann)) {
    if (*ev.root().str("kind") == "friend" && *ev.root().str("event") == "failed") {
      failed.push_back(*ev.root().str("user"));
    }
  }
  CHECK(failed == std::vector<std::string>{"a@x.example", "b@x.example"});
  auto friends = h.request(ann, wire::MapWriter(), "friends");
  CHECK(friends.root().array("outgoing")->empty());
  h.clock.now += 3'600'000;
  CHECK(ok(h.rel(ann, "friend_request", "c@x.example")));  // a new hour
}
