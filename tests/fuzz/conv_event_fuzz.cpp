// Fuzz target: conversation events as they arrive from other nodes — decoding, and feeding what
// decodes to a replica (causal buffer, equivocation, authority checks).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "parley/conv/replica.h"
#include "parley/crypto/secret.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool ready = parley::crypto::init();
  if (!ready) return 0;
  auto e = parley::conv::Event::decode(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!e.ok()) return 0;
  parley::conv::Replica r(e->conv, "x.example");
  (void)r.receive(*e);
  (void)r.state().hash();
  return 0;
}
