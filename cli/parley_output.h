// parley's output conventions: exit codes by error class, terminal-safe text and JSON strings.
#pragma once

#include <string>

#include "parley/result.h"
#include "printable.h"

namespace parley::cli {

constexpr int kOk = 0, kFail = 1, kUsage = 2, kConnection = 3, kAuth = 4, kRefused = 5,
              kTimeout = 6, kRateLimited = 7;

int exit_code_for(const std::string& code);
// Prints "parley: MESSAGE" on stderr and returns the exit code of its class.
int fail(const Error& e);
bool valid_utf8(const std::string& s);
std::string json_str(const std::string& s);
// "text":"..." for UTF-8, else "body_b64":"...".
std::string text_fields_json(const std::string& body);

}  // namespace parley::cli
