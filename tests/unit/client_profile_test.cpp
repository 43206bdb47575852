// The client profile stores pushed stream events idempotently: a re-sent event (after a crash or
// a reconnect before the ack) changes nothing, and receipts move own messages forward only.
#include <catch2/catch.hpp>
#include <filesystem>
#include <tuple>
#include <vector>

#include "parley/client/profile.h"
#include "parley/crypto/secret.h"

using namespace parley;

namespace {

wire::Message msg_event(std::uint64_t seq, std::uint64_t cseq, const std::string& from,
                        const std::string& text) {
  wire::MapWriter w;
  w.add("t", "ev")
      .add("seq", seq)
      .add("kind", "msg")
      .add("at_ms", 1)
      .add("conv", "dm:x")
      .add("cseq", cseq)
      .add("msg_id", "m" + std::to_string(cseq))
      .add("from", from)
      .add("from_device", 1)
      .add("to", from == "me@n.org" ? "you@n.org" : "me@n.org")
      .add_bin("body", text)
      .add("sent_ms", 5);
  return *wire::Message::parse(w.finish());
}

wire::Message receipt(std::uint64_t seq, const std::string& status, std::uint64_t where) {
  wire::MapWriter w;
  w.add("t", "ev")
      .add("seq", seq)
      .add("kind", "receipt")
      .add("conv", "dm:x")
      .add("status", status)
      .add("by", "you@n.org");
  status == "read" ? w.add("upto", where) : w.add("cseq", where);
  return *wire::Message::parse(w.finish());
}

}  // namespace

TEST_CASE("profile: events stored once, receipts update own messages, session kept") {
  crypto::init();
  const auto dir = std::filesystem::temp_directory_path() /
                   ("parley-profile-test-" + crypto::hex_encode(crypto::random_bytes(6)));
  {
    auto p = std::move(client::Profile::open(dir.string()).value());
    REQUIRE(std::filesystem::status(dir).permissions() == std::filesystem::perms::owner_all);
    const std::string me = "me@n.org";
    REQUIRE(*p->store_event(msg_event(1, 1, me, "mine").root(), me));
    REQUIRE(*p->store_event(msg_event(2, 2, "you@n.org", "theirs").root(), me));
    REQUIRE_FALSE(*p->store_event(msg_event(2, 2, "you@n.org", "theirs").root(), me));  // replay
    REQUIRE(*p->store_event(msg_event(3, 3, me, "mine too").root(), me));
    // Message bodies wait (end-to-end ciphertext) until they are opened into the history.
    auto pending = p->db().prepare("SELECT count(*) FROM e2e_pending");
    REQUIRE(pending->step().value());
    REQUIRE(pending->column_int64(0) == 3);
    for (const auto& [cseq, from, text] : std::vector<std::tuple<int, std::string, std::string>>{
             {1, me, "mine"}, {2, "you@n.org", "theirs"}, {3, me, "mine too"}}) {
      client::StoredMessage m{
          "dm:x", cseq, "m" + std::to_string(cseq),      from, from == me ? "you@n.org" : me,
          text,   5,    from == me ? "sent" : "received"};
      REQUIRE(p->add_message(m, "ok").ok());
    }
    auto h = std::move(p->history("dm:x", 50).value());
    REQUIRE(h.size() == 3);
    REQUIRE(h[1].body == "theirs");
    REQUIRE(h[0].status == "sent");
    REQUIRE(h[1].status == "received");

    REQUIRE(*p->store_event(receipt(4, "delivered", 1).root(), me));
    REQUIRE((*p->find_message("dm:x", 1))->status == "delivered");
    REQUIRE((*p->find_message("dm:x", 3))->status == "sent");
    REQUIRE(*p->store_event(receipt(5, "read", 3).root(), me));
    REQUIRE((*p->find_message("dm:x", 1))->status == "read");
    REQUIRE((*p->find_message("dm:x", 3))->status == "read");
    REQUIRE((*p->find_message("dm:x", 2))->status == "received");  // not ours: untouched
    // A late delivered receipt never moves a read message backwards.
    REQUIRE(*p->store_event(receipt(6, "delivered", 3).root(), me));
    REQUIRE((*p->find_message("dm:x", 3))->status == "read");
    // A receipt that arrives before its message was opened is applied when it is.
    REQUIRE(*p->store_event(receipt(7, "delivered", 9).root(), me));
    REQUIRE(p->add_message({"dm:x", 9, "m9", me, "you@n.org", "late", 6, "sent"}, "ok").ok());
    REQUIRE((*p->find_message("dm:x", 9))->status == "delivered");
    REQUIRE(p->set("token", "t").ok());
  }
  auto again = std::move(client::Profile::open(dir.string()).value());
  REQUIRE(*again->get("token") == "t");
  REQUIRE(again->clear_session().ok());
  REQUIRE(again->get("token")->empty());
  REQUIRE(again->history("dm:x", 2)->size() == 2);  // the most recent two
  REQUIRE(again->history("dm:x", 2)->back().body == "late");
  std::filesystem::remove_all(dir);
}
