#include "parley/address.h"

#include <sodium.h>

#include <algorithm>
#include <cctype>

namespace parley::wire {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

Status validate_local_part(std::string_view local) {
  if (local.empty() || local.size() > 64) {
    return make_error("bad_request", "user name must be 1 to 64 characters");
  }
  auto ok_first = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!ok_first(local[0])) {
    return make_error("bad_request", "user name must start with a lower-case letter or digit");
  }
  for (char c : local) {
    if (!ok_first(c) && c != '.' && c != '_' && c != '-') {
      return make_error("bad_request", "user name may hold only a-z, 0-9, '.', '_' and '-'");
    }
  }
  return ok_status();
}

Status validate_domain(std::string_view domain) {
  if (domain.empty() || domain.size() > 253) {
    return make_error("bad_request", "node name must be 1 to 253 characters");
  }
  std::size_t label = 0;
  for (std::size_t i = 0; i < domain.size(); ++i) {
    const char c = domain[i];
    if (c == '.') {
      if (label == 0) return make_error("bad_request", "node name has an empty label");
      label = 0;
      continue;
    }
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return make_error("bad_request", "node name may hold only a-z, 0-9, '-' and '.'");
    if (++label > 63) return make_error("bad_request", "node name label longer than 63");
  }
  if (label == 0) return make_error("bad_request", "node name ends with '.'");
  return ok_status();
}

Result<Address> parse_address(std::string_view text) {
  const std::string s = lower(text);
  const auto at = s.find('@');
  if (at == std::string::npos || s.find('@', at + 1) != std::string::npos) {
    return make_error("bad_request",
                      "'" + std::string(text) + "' is not an address like user@node");
  }
  Address a{s.substr(0, at), s.substr(at + 1)};
  PARLEY_TRY(validate_local_part(a.local));
  PARLEY_TRY(validate_domain(a.domain));
  return a;
}

std::string dm_conversation_id(std::string_view address_a, std::string_view address_b) {
  std::string a = lower(address_a), b = lower(address_b);
  if (b < a) std::swap(a, b);
  std::string input = "parley-dm-v1";
  input.push_back('\0');
  input += a;
  input.push_back('\0');
  input += b;
  unsigned char out[16];
  crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(input.data()),
                     input.size(), nullptr, 0);
  static const char* kHex = "0123456789abcdef";
  std::string id = "dm:";
  for (unsigned char c : out) {
    id.push_back(kHex[c >> 4]);
    id.push_back(kHex[c & 15]);
  }
  return id;
}

}  // namespace parley::wire
