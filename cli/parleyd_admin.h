// What every `parleyd` command that talks to a running node shares: the admin API call, the exit
// codes by class, and confirmation of destructive commands.
#pragma once

#include <cpprest/http_client.h>
#include <cpprest/json.h>

#include <cstdint>
#include <string>

#include "parley/result.h"

namespace parley::cli {

// Exit codes by class (parleyd --help lists them).
constexpr int kOk = 0, kFail = 1, kUsage = 2, kUnreachable = 3, kNotFound = 4, kRefused = 5,
              kLocked = 6;

int exit_code_for(const std::string& code);
// Prints "parleyd: MESSAGE" to stderr and returns the exit code of its class.
int fail(const Error& e);

// A request to the running node's admin API (/admin/v1 + path). Returns the JSON body, or an
// error with the node's code and message ("unreachable" when the node does not answer).
Result<web::json::value> admin_call(const std::string& data_dir, const web::http::method& method,
                                    const std::string& path, const web::json::value& body);

// 2026-12-01T06:19:58Z
std::string iso_time(std::int64_t ms);

// Asks on the terminal to type `expected` to confirm `question`; true when `yes` was given or
// the answer matches. Without a terminal (and without --yes) prints why and returns false.
bool confirmed(const std::string& question, const std::string& expected, bool yes);

}  // namespace parley::cli
