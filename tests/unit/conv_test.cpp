// Replicated conversations (conv/replica.h): canonical events, causal delivery with buffering,
// equivocation, authority in the causal past, and the concurrent-membership rules.
#include <catch2/catch.hpp>

#include "parley/conv/replica.h"
#include "parley/crypto/secret.h"

using namespace parley;
using conv::Kind;
using conv::Replica;

namespace {
const std::string A = "ann@a.example", B = "bob@b.example", C = "cat@c.example";
}

TEST_CASE("events: canonical encoding, ids, and malformed input") {
  crypto::init();
  Replica a("g:1", "a.example");
  auto e = a.create(Kind::kCreate, A, "", "", B + "\n", 5);
  REQUIRE(e.ok());
  auto back = conv::Event::decode(e->encode());
  REQUIRE(back.ok());
  CHECK(back->id() == e->id());
  CHECK(e->id().size() == 64);
  std::string bytes = e->encode();
  CHECK_FALSE(conv::Event::decode(bytes.substr(0, bytes.size() - 1)).ok());
  conv::Event bad = *e;
  bad.clock["a.example#0"] = 7;  // the clock must hold the event's own seq
  CHECK(conv::Event::decode(bad.encode()).error().code == "bad_request");
}

TEST_CASE("causal delivery: early events wait, duplicates and equivocations are recognised") {
  crypto::init();
  Replica a("g:1", "a.example"), b("g:1", "b.example");
  auto create = *a.create(Kind::kCreate, A, "", "", B + "\n", 0);
  auto m1 = *a.create(Kind::kMessage, A, "", "", "one", 1);
  auto m2 = *a.create(Kind::kMessage, A, "", "", "two", 2);
  CHECK(b.receive(m2) == Replica::Outcome::kBuffered);
  CHECK(b.receive(m1) == Replica::Outcome::kBuffered);
  CHECK(b.buffered() == 2);
  CHECK(b.receive(create) == Replica::Outcome::kApplied);  // and the two waiting behind it
  CHECK(b.buffered() == 0);
  CHECK(b.clock().at("a.example#0") == 3);
  CHECK(b.receive(m1) == Replica::Outcome::kDuplicate);
  conv::Event forged = m2;
  forged.body = "not what a.example said first";
  CHECK(b.receive(forged) == Replica::Outcome::kEquivocation);
  REQUIRE(b.equivocations().size() == 1);
  CHECK(b.state().messages.back().body == "two");
  // b answers; a learns it; both agree.
  auto reply = *b.create(Kind::kMessage, B, "", "", "hi", 3);
  CHECK(reply.clock.at("a.example#0") == 3);
  CHECK(a.receive(reply) == Replica::Outcome::kApplied);
  CHECK(a.state().hash() == b.state().hash());
  CHECK(a.missing_for(b.clock(), 10).empty());
  CHECK(b.missing_for({{"a.example#0", 1}}, 10).size() == 3);
  conv::Event other_conv = reply;
  other_conv.conv = "g:2";
  CHECK(a.receive(other_conv) == Replica::Outcome::kRejected);
}

TEST_CASE("authority in the causal past; concurrent membership changes: remove wins") {
  crypto::init();
  Replica a("g:1", "a.example"), b("g:1", "b.example"), c("g:1", "c.example");
  auto create = *a.create(Kind::kCreate, A, "", "", B + "\n", 0);
  for (auto* r : {&b, &c}) r->receive(create);
  // Not a member: refused at its own node.
  CHECK(c.create(Kind::kMessage, C, "", "", "let me in", 1).error().code == "not_allowed");
  CHECK(b.create(Kind::kAdd, B, C, "member", "", 1).error().code == "not_allowed");  // not admin
  auto promote = *a.create(Kind::kRole, A, B, "admin", "", 1);
  b.receive(promote);
  c.receive(promote);
  // Concurrently: bob (now an admin) adds cat while ann removes bob.
  auto add_cat = *b.create(Kind::kAdd, B, C, "member", "", 2);
  auto remove_bob = *a.create(Kind::kRemove, A, B, "", "", 2);
  a.receive(add_cat);
  b.receive(remove_bob);
  c.receive(add_cat);
  c.receive(remove_bob);
  CHECK(a.state().hash() == b.state().hash());
  CHECK(b.state().hash() == c.state().hash());
  const auto s = a.state();
  CHECK(s.members.count(B) == 0);    // removed
  REQUIRE(s.members.count(C) == 1);  // b was an admin when it added cat (its causal past)
  CHECK(s.members.at(C).role == "member");
  // Bob's message after his removal (in its causal past) is refused.
  CHECK(b.create(Kind::kMessage, B, "", "", "am I out?", 3).error().code == "not_allowed");
  // Role changes in causal order: the later one holds.
  REQUIRE(a.create(Kind::kRole, A, C, "admin", "", 3).ok());
  CHECK(a.state().members.at(C).role == "admin");
  REQUIRE(a.create(Kind::kRole, A, C, "member", "", 4).ok());
  CHECK(a.state().members.at(C).role == "member");
}

TEST_CASE("messages: edits by the author only, recall beats edits, read markers move forward") {
  crypto::init();
  Replica a("g:1", "a.example"), b("g:1", "b.example");
  b.receive(*a.create(Kind::kCreate, A, "", "", B + "\n", 0));
  auto m = *a.create(Kind::kMessage, A, "", "", "draft", 1);
  b.receive(m);
  CHECK(b.create(Kind::kEdit, B, m.id(), "", "hijack", 2).error().code == "not_allowed");
  auto edit = *a.create(Kind::kEdit, A, m.id(), "", "final", 2);
  // Bob, neither author nor admin, may not recall ann's message; ann may.
  CHECK(b.create(Kind::kRecall, B, m.id(), "", "", 2).error().code == "not_allowed");
  b.receive(edit);
  CHECK(b.state().messages[0].body == "final");
  CHECK(b.state().messages[0].edited);
  auto own_recall = *a.create(Kind::kRecall, A, m.id(), "", "", 3);
  auto late_edit = *a.create(Kind::kEdit, A, m.id(), "", "after recall", 4);
  (void)late_edit;
  const auto s = a.state();
  REQUIRE(s.messages.size() == 1);
  CHECK(s.messages[0].recalled);
  CHECK(s.messages[0].body.empty());
  auto r1 = *a.create(Kind::kRead, A, own_recall.id(), "", "", 5);
  auto r0 = *a.create(Kind::kRead, A, m.id(), "", "", 6);  // an older position: ignored
  (void)r1;
  (void)r0;
  CHECK(a.state().read_upto.at(A) == own_recall.id());
}

TEST_CASE("concurrent role changes: the lower role wins on every node") {
  crypto::init();
  Replica a("g:1", "a.example"), b("g:1", "b.example");
  b.receive(*a.create(Kind::kCreate, A, "", "", B + "\n" + C + "\n", 0));
  b.receive(*a.create(Kind::kRole, A, B, "admin", "", 1));
  auto up = *a.create(Kind::kRole, A, C, "admin", "", 2);
  auto down = *b.create(Kind::kRole, B, C, "member", "", 2);
  a.receive(down);
  b.receive(up);
  CHECK(a.state().members.at(C).role == "member");
  CHECK(a.state().hash() == b.state().hash());
}

TEST_CASE("signed events: any node can pass them on, the origin's key is checked") {
  crypto::init();
  const auto a_key = crypto::SigningKey::generate();
  const auto other = crypto::SigningKey::generate();
  Replica a("g:1", "a.example");
  auto e = *a.create(Kind::kCreate, A, "", "", B + "\n", 0);
  const auto signed_event = conv::sign_event(e, a_key);
  auto back = conv::SignedEvent::decode(signed_event.encode());
  REQUIRE(back.ok());
  CHECK(back->event.id() == e.id());
  CHECK(back->verify(a_key.public_key()));
  CHECK_FALSE(back->verify(other.public_key()));
  conv::SignedEvent forged = *back;
  forged.event.body = B + "\n" + C + "\n";  // a relaying node adding a member
  CHECK_FALSE(forged.verify(a_key.public_key()));
  CHECK(conv::SignedEvent::decode("\x80").error().code == "bad_request");
}

TEST_CASE("the catch-up worked example of spec/ordering.md section 6") {
  crypto::init();
  const std::string D = "dan@c.example";
  Replica a("g:1", "a.example"), b("g:1", "b.example"), c("g:1", "c.example");
  auto to = [](Replica& r, const conv::Event& e) { return r.receive(e); };
  auto a1 = *a.create(Kind::kCreate, A, "team", "", B + "\n" + C + "\n", 0);
  auto a2 = *a.create(Kind::kMessage, A, "", "", "x", 0);
  for (auto* r : {&b, &c}) {
    to(*r, a1);
    to(*r, a2);
  }
  auto b1 = *b.create(Kind::kMessage, B, "", "", "y", 0);
  to(a, b1);
  to(c, b1);
  auto c1 = *c.create(Kind::kMessage, C, "", "", "z", 0);
  to(a, c1);
  to(b, c1);
  // c stops.
  auto a3 = *a.create(Kind::kRole, A, B, "admin", "", 0);
  to(b, a3);
  auto b2 = *b.create(Kind::kMessage, B, "", "", "w", 0);
  auto b3 = *b.create(Kind::kAdd, B, D, "member", "", 0);
  to(a, b2);
  to(a, b3);
  auto a4 = *a.create(Kind::kMessage, A, "", "", "v", 0);
  CHECK(b1.clock == conv::Clock{{"a.example#0", 2}, {"b.example#0", 1}});
  CHECK(c1.clock == conv::Clock{{"a.example#0", 2}, {"b.example#0", 1}, {"c.example#0", 1}});
  CHECK(a4.clock == conv::Clock{{"a.example#0", 4}, {"b.example#0", 3}, {"c.example#0", 1}});
  // c restarts: a's queue first.
  CHECK(to(c, a3) == Replica::Outcome::kApplied);
  CHECK(to(c, a4) == Replica::Outcome::kBuffered);
  const conv::Clock pulled_with{{"a.example#0", 3}, {"b.example#0", 1}, {"c.example#0", 1}};
  CHECK(c.clock() == pulled_with);
  const auto answer = a.missing_for(pulled_with, 50);
  REQUIRE(answer.size() == 3);
  CHECK(answer[0].id() == b2.id());
  CHECK(answer[1].id() == b3.id());
  CHECK(answer[2].id() == a4.id());
  CHECK(to(c, answer[0]) == Replica::Outcome::kApplied);
  CHECK(to(c, answer[1]) == Replica::Outcome::kApplied);  // and the waiting a:4 with it
  CHECK(to(c, answer[2]) == Replica::Outcome::kDuplicate);
  CHECK(to(c, b2) == Replica::Outcome::kDuplicate);  // b's queue, later
  CHECK(to(c, b3) == Replica::Outcome::kDuplicate);
  to(b, a4);
  std::vector<std::string> expected;
  for (const auto* e : {&a1, &a2, &b1, &c1, &a3, &b2, &b3, &a4}) expected.push_back(e->id());
  for (auto* r : {&a, &b, &c}) {
    std::vector<std::string> got;
    for (const auto* e : r->ordered()) got.push_back(e->id());
    CHECK(got == expected);
    CHECK(r->members().at(D).role == "member");
    CHECK(r->members().at(B).role == "admin");
  }
  CHECK(a.state().hash() == c.state().hash());
}

TEST_CASE("valid clocks: actors are node#epoch and the entries add up to less than 2^53") {
  crypto::init();
  std::string node;
  std::uint64_t epoch = 7;
  CHECK(conv::parse_actor("a.example#0", &node, &epoch));
  CHECK(node == "a.example");
  CHECK(epoch == 0);
  CHECK(conv::parse_actor("a.example#12", &node, &epoch));
  CHECK(epoch == 12);
  for (const char* bad : {"a.example", "#0", "a.example#", "a.example#01", "a.example#-1",
                          "a.example#1x", "a#b#0", "a.example#4294967296"}) {
    CAPTURE(bad);
    CHECK_FALSE(conv::parse_actor(bad, nullptr, nullptr));
  }
  CHECK(*conv::clock_sum({{"a.example#0", 3}, {"b.example#0", 4}}) == 7);
  CHECK(conv::clock_sum({{"a.example#0", UINT64_MAX}}).error().code == "bad_clock");
  // 2^63 + 2^63 wraps to 0 in 64 bits: refused, not summed.
  CHECK(conv::clock_sum({{"a.example#0", 1ull << 63}, {"b.example#0", 1ull << 63}}).error().code ==
        "bad_clock");
  CHECK(conv::clock_sum({{"a.example#0", conv::kMaxClockSum - 1}}).ok());
  CHECK_FALSE(conv::clock_sum({{"a.example#0", conv::kMaxClockSum - 1}, {"b.example#0", 1}}).ok());
  CHECK_FALSE(conv::clock_sum({{"not an actor", 1}}).ok());

  Replica a("g:1", "a.example"), b("g:1", "b.example");
  auto create = *a.create(Kind::kCreate, A, "", "", B + "\n", 0);
  REQUIRE(b.receive(create) == Replica::Outcome::kApplied);
  auto m = *a.create(Kind::kMessage, A, "", "", "one", 1);
  // A huge entry for a foreign actor: refused on decode and on receive, never buffered.
  conv::Event huge = m;
  huge.clock["x.example#0"] = UINT64_MAX;
  CHECK(conv::Event::decode(huge.encode()).error().code == "bad_request");
  CHECK(b.receive(huge) == Replica::Outcome::kRejected);
  CHECK(b.rejected_because() == "invalid clock");
  CHECK(b.buffered() == 0);
  // An entry that would wrap the sum to just above zero: with unsigned wrapping this event
  // sorted before the create; it is refused, and order keys saturate instead of wrapping.
  conv::Event wrap = m;
  wrap.clock["x.example#0"] = UINT64_MAX - 1;
  CHECK(b.receive(wrap) == Replica::Outcome::kRejected);
  CHECK(conv::order_key(create) < conv::order_key(wrap));
  CHECK(b.receive(m) == Replica::Outcome::kApplied);
}

TEST_CASE("an actor's clock never regresses from its previous event") {
  crypto::init();
  Replica a("g:1", "a.example"), b("g:1", "b.example"), c("g:1", "c.example");
  auto create = *a.create(Kind::kCreate, A, "", "", B + "\n" + C + "\n", 0);
  auto a2 = *a.create(Kind::kMessage, A, "", "", "two", 1);
  auto a3 = *a.create(Kind::kMessage, A, "", "", "three", 2);
  for (const auto& e : {create, a2, a3}) REQUIRE(b.receive(e) == Replica::Outcome::kApplied);
  auto b1 = *b.create(Kind::kMessage, B, "", "", "seen three", 3);  // {a:3, b:1}
  // b's next event claims to have seen only the create: Σ 3 where b:1 had Σ 4, so it would sort
  // before b's own earlier message and before a's "three".
  conv::Event b2 = b1;
  b2.seq = 2;
  b2.clock = {{"a.example#0", 1}, {"b.example#0", 2}};
  b2.body = "pinned early";
  for (const auto& e : {create, a2, a3, b1}) REQUIRE(c.receive(e) == Replica::Outcome::kApplied);
  CHECK(c.receive(b2) == Replica::Outcome::kRejected);
  CHECK(c.rejected_because() == "clock regresses");
  CHECK(c.log().size() == 4);
  // The same event arriving before its predecessor waits, and is refused once b:1 is there.
  Replica d("g:1", "d.example");
  for (const auto& e : {create, a2, a3}) REQUIRE(d.receive(e) == Replica::Outcome::kApplied);
  CHECK(d.receive(b2) == Replica::Outcome::kBuffered);
  CHECK(d.receive(b1) == Replica::Outcome::kApplied);
  CHECK(d.buffered() == 0);
  const auto refused = d.take_refused();
  REQUIRE(refused.size() == 1);
  CHECK(refused[0].first.id() == b2.id());
  CHECK(refused[0].second == "clock regresses");
  CHECK(d.take_refused().empty());
  CHECK(d.state().hash() == c.state().hash());
  // An honest next event applies.
  auto honest = *b.create(Kind::kMessage, B, "", "", "fine", 4);
  CHECK(c.receive(honest) == Replica::Outcome::kApplied);
}

TEST_CASE("only a node hosting a member in an event's causal past writes into the group") {
  crypto::init();
  Replica a("g:1", "a.example"), b("g:1", "b.example");
  auto create = *a.create(Kind::kCreate, A, "", "", B + "\n", 0);
  REQUIRE(b.receive(create) == Replica::Outcome::kApplied);
  // h.example hosts no member but knows the group's id: its events are refused, not stored
  // (they used to be stored "without effect" and replicated to every node).
  const auto forge = [&](Kind kind, const std::string& target, const std::string& role) {
    conv::Event e;
    e.conv = "g:1";
    e.origin = "h.example";
    e.seq = 1;
    e.clock = {{"a.example#0", 1}, {"h.example#0", 1}};
    e.kind = kind;
    e.author = "eve@h.example";
    e.target = target;
    e.role = role;
    e.body = kind == Kind::kMessage ? "spam" : "";
    return e;
  };
  for (const auto& e : {forge(Kind::kMessage, "", ""), forge(Kind::kAdd, "eve@h.example", "admin"),
                        forge(Kind::kLeave, "eve@h.example", "")}) {
    CHECK(b.receive(e) == Replica::Outcome::kRejected);
    CHECK(b.rejected_because() == "origin hosts no member");
  }
  conv::Event second_create = forge(Kind::kCreate, "", "");
  second_create.clock = {{"a.example#0", 1}, {"h.example#0", 1}};
  CHECK(b.receive(second_create) == Replica::Outcome::kRejected);
  CHECK(b.log().size() == 1);
  CHECK(b.clock().count("h.example#0") == 0);
  // A member's node writes while its member is in, also concurrently with the removal; after
  // the removal is in its causal past it is refused (its honest node would not make it).
  auto bob_says = *b.create(Kind::kMessage, B, "", "", "still in", 1);
  auto remove_bob = *a.create(Kind::kRemove, A, B, "", "", 2);
  CHECK(a.receive(bob_says) == Replica::Outcome::kApplied);
  CHECK(b.receive(remove_bob) == Replica::Outcome::kApplied);
  conv::Event after = bob_says;
  after.seq = 2;
  after.clock = b.clock();
  after.clock["b.example#0"] = 2;
  after.body = "out but writing";
  CHECK(a.receive(after) == Replica::Outcome::kRejected);
  CHECK(a.rejected_because() == "origin hosts no member");
  // Stored events replay without the checks (a log written before them still loads).
  Replica again("g:1", "c.example");
  CHECK(again.receive(create, true) == Replica::Outcome::kApplied);
  CHECK(again.receive(forge(Kind::kMessage, "", ""), true) == Replica::Outcome::kApplied);
}
