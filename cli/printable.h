// Text written by users (messages, names, labels, report text) shown on a terminal: control bytes
// escaped (\n, \xNN), so it can never drive the terminal. Shared by parley and parleyd.
#pragma once

#include <cstdio>
#include <string>

namespace parley::cli {

inline std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

}  // namespace parley::cli
