// Fuzz target: the federation transaction decoder (body of PUT /federation/v1/send/{txn}). Anything
// it accepts must re-encode to bytes that parse to the same transaction.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "parley/federation/transaction.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace fed = parley::federation;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
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
