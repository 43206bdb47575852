// Directory queries between nodes (spec/federation.md section 5): the body of
// POST /federation/v1/query/{kind}, {"user": <local part>, "asker": <address>[, "devices": [...]]}.
// Pure codec of untrusted bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "parley/result.h"

namespace parley::federation {

struct DirectoryQuery {
  std::string user;                    // local part at the receiving node
  std::string asker;                   // a user of the asking node
  std::vector<std::uint64_t> devices;  // empty: all

  std::string encode() const;
  // "bad_request" unless exactly that structure (at most 100 devices).
  static Result<DirectoryQuery> decode(std::string_view bytes);
};

}  // namespace parley::federation
