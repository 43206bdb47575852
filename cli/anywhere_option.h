// An option that may stand anywhere on the command line: `parleyd --data D user add X` and
// `parleyd user add X --data D` mean the same, as the README, `init` and the scripts print them.
//
// CLI11 options belong to one (sub)command, and `fallthrough()` would leave the option out of
// every subcommand's --help. So the option is added to the app and to every subcommand under it,
// each copy writing to its own slot; value() merges them. Construct it after every subcommand
// exists. Not thread-safe; one per option per process.
#pragma once

#include <CLI/CLI.hpp>
#include <deque>
#include <string>
#include <vector>

#include "parley/result.h"

namespace parley::cli {

class AnywhereOption {
 public:
  // `flag` like "--data"; `env` names the environment variable used when the option is given
  // nowhere (nullptr: none); `fallback` is the value when neither is set.
  AnywhereOption(CLI::App& app, std::string flag, const std::string& help, const char* env,
                 std::string fallback);

  // After parsing: the value given (every copy given must agree: "bad_request" otherwise), else
  // the environment variable, else the fallback.
  Result<std::string> value() const;

 private:
  void add_to(CLI::App& app, const std::string& help);

  std::string flag_;
  std::string env_value_;
  bool env_set_ = false;
  std::string fallback_;
  std::deque<std::string> slots_;  // deque: each option keeps a stable address to write to
  std::vector<CLI::Option*> options_;
};

}  // namespace parley::cli
