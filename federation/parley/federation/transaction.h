// Federation transactions (spec/federation.md section 4): the body of
// PUT /federation/v1/send/{txn}, {"origin": <name>, "epoch": <uint>, "events": [{"id": <uint>,
// "payload": <bin>}…]} ("epoch" absent means 0).
// Pure encode/parse of untrusted bytes; the event payloads stay opaque here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "parley/result.h"

namespace parley::federation {

constexpr std::size_t kMaxTransactionBytes = 4u << 20;
constexpr std::size_t kMaxTransactionEvents = 1000;
constexpr std::size_t kMaxEventPayload = 256 * 1024;

struct TransactionEvent {
  std::int64_t id = 0;
  std::string payload;
};

struct Transaction {
  std::string origin;
  std::uint64_t epoch = 0;  // the origin's epoch: ids count anew in each (a restore raises it)
  std::vector<TransactionEvent> events;  // ids strictly increasing
};

std::string encode_transaction(const Transaction& txn);

// Errors: "payload_too_large" (over the byte or event limits), "bad_request" (anything else that
// is not exactly the structure above, including ids that do not increase).
Result<Transaction> parse_transaction(std::string_view body);

}  // namespace parley::federation
