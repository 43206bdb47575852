// Fuzz target: the federation body decoders — transactions (PUT /federation/v1/send/{txn}) and
// directory queries (POST /federation/v1/query/{kind}). What they accept must re-encode to bytes
// that decode to the same value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "parley/federation/query.h"
#include "parley/federation/transaction.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace fed = parley::federation;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // The directory query decoder shares this target (both are msgpack bodies of signed requests).
  if (auto q = fed::DirectoryQuery::decode(bytes); q.ok()) {
    auto again = fed::DirectoryQuery::decode(q->encode());
    if (!again.ok() || again->user != q->user || again->devices != q->devices) std::abort();
  }
  auto txn = fed::parse_transaction(bytes);
  if (!txn.ok()) return 0;
  auto again = fed::parse_transaction(fed::encode_transaction(*txn));
  if (!again.ok() || again->origin != txn->origin || again->events.size() != txn->events.size()) {
    std::abort();
  }
  for (std::size_t i = 0; i < txn->events.size(); ++i) {
    if (again->events[i].id != txn->events[i].id ||
        again->events[i].payload != txn->events[i].payload) {
      std::abort();
    }
  }
  return 0;
}
