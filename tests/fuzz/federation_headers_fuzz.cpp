// Fuzz target: the federation parsers of untrusted bytes — the Authorization header and the key
// document.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "parley/federation/key_document.h"
#include "parley/federation/signing.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)parley::federation::parse_authorization(bytes);
  (void)parley::federation::parse_key_document(bytes, "a.example");
  return 0;
}
