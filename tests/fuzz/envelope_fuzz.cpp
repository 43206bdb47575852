// Fuzz target: the end-to-end bodies a client receives from its node — the 1:1 envelope and the
// group message body (spec/crypto.md sections 8 and 8a). Whatever decodes must re-encode to
// bytes that decode to the same value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "parley/client/envelope.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using parley::client::Envelope;
  using parley::client::GroupBody;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (auto env = Envelope::decode(bytes); env.ok()) {
    auto again = Envelope::decode(env->encode());
    if (!again.ok() || again->encode() != env->encode() ||
        again->entries.size() != env->entries.size()) {
      std::abort();
    }
    (void)env->entry_for("a@b.example", 1);
  }
  if (auto g = GroupBody::decode(bytes); g.ok()) {
    auto again = GroupBody::decode(g->encode());
    if (!again.ok() || again->encode() != g->encode() || again->message != g->message ||
        again->dist.has_value() != g->dist.has_value()) {
      std::abort();
    }
  }
  return 0;
}
