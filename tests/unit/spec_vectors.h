// Reads the test vectors of a spec file (spec/crypto.md section 9): lines `name = <hex>` or
// `name = "<text>"` in its code blocks, where a long hex value may continue on the following lines
// indented by four spaces. Used by the unit tests that check the implementation against the spec,
// so the two cannot drift apart.
#pragma once

#include <fstream>
#include <map>
#include <stdexcept>
#include <string>

#include "parley/crypto/secret.h"

namespace parley::test {

// name -> bytes (hex decoded) or text (quoted values, without the quotes). Throws when the file is
// missing or a hex value does not decode, so a broken spec fails the test loudly.
inline std::map<std::string, std::string> read_spec_vectors(const std::string& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read " + file);
  std::map<std::string, std::string> out;
  std::string name, hex;
  auto flush = [&] {
    if (name.empty()) return;
    auto bytes = crypto::hex_decode(hex);
    if (!bytes.ok()) throw std::runtime_error("vector " + name + " is not hex");
    out[name] = *bytes;
    name.clear();
    hex.clear();
  };
  for (std::string line; std::getline(in, line);) {
    if (!name.empty() && line.rfind("    ", 0) == 0 &&
        line.find_first_not_of("0123456789abcdef", 4) == std::string::npos) {
      hex += line.substr(4);
      continue;
    }
    flush();
    const auto eq = line.find(" =");
    if (eq == std::string::npos || eq == 0 || line.find(' ') < eq || line.find('.') > eq ||
        line.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_.") < eq) {
      continue;
    }
    const std::string key = line.substr(0, eq);
    std::string value = line.size() > eq + 3 ? line.substr(eq + 3) : "";
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      out[key] = value.substr(1, value.size() - 2);
      continue;
    }
    name = key;
    hex = value;
  }
  flush();
  return out;
}

}  // namespace parley::test
