// `parleyd config check`: runs node::check_node on a data directory and prints each check with
// ok / warning / problem and a hint (or one JSON document with --json).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace parley::cli {

struct ConfigCommand {
  CLI::App* check = nullptr;
  bool json = false;
  bool offline = false;
  int timeout_seconds = 5;
};

// Adds `config check` to `app`, its options bound to `cmd` (which must outlive the parse).
void add_config_commands(CLI::App& app, ConfigCommand& cmd);

// Runs it; the exit code: 0 no problems (warnings allowed), 1 problems found, 2 usage.
int run_config_check(const ConfigCommand& cmd, const std::string& data_dir);

}  // namespace parley::cli
