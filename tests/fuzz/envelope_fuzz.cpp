// Fuzz target: the end-to-end envelope of a message body, as a client receives it from its
// node. Whatever decodes must re-encode to bytes that decode to the same envelope.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "parley/client/envelope.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using parley::client::Envelope;
  auto env = Envelope::decode(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!env.ok()) return 0;
  auto again = Envelope::decode(env->encode());
  if (!again.ok() || again->encode() != env->encode() ||
      again->entries.size() != env->entries.size()) {
    std::abort();
  }
  (void)env->entry_for("a@b.example", 1);
  return 0;
}
