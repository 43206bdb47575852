#include "parley_output.h"

#include <cstdio>
#include <iostream>

#include "parley/crypto/secret.h"

namespace parley::cli {

int exit_code_for(const std::string& code) {
  if (code == "rate_limited") return kRateLimited;
  for (const char* c : {"bad_credentials", "suspended", "deactivated", "not_logged_in",
                        "logged_out", "unauthenticated"}) {
    if (code == c) return kAuth;
  }
  for (const char* c : {"not_found", "not_allowed", "bad_request", "conflict", "payload_too_large",
                        "identity_changed", "not_approved", "forbidden"}) {
    if (code == c) return kRefused;
  }
  for (const char* c : {"unreachable", "connection_lost", "heartbeat_timeout", "slow_consumer",
                        "shutdown", "malformed_frame", "frame_too_large"}) {
    if (code == c) return kConnection;
  }
  if (code == "timeout") return kTimeout;
  return kFail;
}

int fail(const Error& e) {
  std::cerr << "parley: " << e.message << "\n";
  return exit_code_for(e.code);
}

bool valid_utf8(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = c < 0x80             ? 0
                          : (c & 0xe0) == 0xc0 ? 1
                          : (c & 0xf0) == 0xe0 ? 2
                          : (c & 0xf8) == 0xf0 ? 3
                                               : 4;
    if (n == 4) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size() || (static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    i += n + 1;
  }
  return true;
}

std::string json_str(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out + "\"";
}

std::string text_fields_json(const std::string& body) {
  if (valid_utf8(body)) return "\"text\":" + json_str(body);
  return "\"body_b64\":" + json_str(crypto::base64_encode(body));
}

}  // namespace parley::cli
