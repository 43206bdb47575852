#include "parley/federation/transaction.h"

#include "parley/message.h"

namespace parley::federation {

std::string encode_transaction(const Transaction& txn) {
  wire::ArrayWriter events;
  for (const auto& e : txn.events) {
    wire::MapWriter m;
    m.add("id", e.id).add_bin("payload", e.payload);
    events.push(m);
  }
  wire::MapWriter body;
  body.add("origin", txn.origin).add("epoch", txn.epoch).add("events", events);
  return body.finish();
}

Result<Transaction> parse_transaction(std::string_view body) {
  if (body.size() > kMaxTransactionBytes) {
    return make_error("payload_too_large", "transaction body over 4 MiB");
  }
  auto msg = wire::Message::parse(
      body, wire::Limits{kMaxTransactionEvents + 1, 64, 64 * 1024, kMaxEventPayload + 1, 6});
  if (!msg.ok()) {
    // Over a size or nesting limit: most likely too many events, which the sender can split.
    const bool limit = msg.error().message.find("limit") != std::string::npos;
    return make_error(limit ? "payload_too_large" : "bad_request",
                      "transaction: " + msg.error().message);
  }
  const wire::View root = msg->root();
  Transaction txn;
  auto origin = root.str("origin", 253);
  if (!origin.ok()) return make_error("bad_request", origin.error().message);
  txn.origin = std::move(origin).value();
  auto epoch = root.uint_or("epoch", 0);
  if (!epoch.ok()) return make_error("bad_request", epoch.error().message);
  txn.epoch = *epoch;
  auto list = root.array("events");
  if (!list.ok()) return make_error("bad_request", list.error().message);
  if (list->size() > kMaxTransactionEvents) {
    return make_error("payload_too_large", "more than 1000 events in one transaction");
  }
  std::int64_t last = 0;
  for (const auto& e : *list) {
    auto id = e.uint("id");
    auto payload = e.bin("payload", kMaxEventPayload);
    if (!id.ok()) return make_error("bad_request", id.error().message);
    if (!payload.ok()) return payload.take_error();
    if (*id == 0 || *id > static_cast<std::uint64_t>(INT64_MAX) ||
        static_cast<std::int64_t>(*id) <= last) {
      return make_error("bad_request", "event ids must be positive and increase");
    }
    last = static_cast<std::int64_t>(*id);
    txn.events.push_back({last, std::move(payload).value()});
  }
  return txn;
}

}  // namespace parley::federation
