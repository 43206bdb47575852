// `parleyd retention show|set|purge`: how long the node keeps messages, and purging what is past
// its lifetime (spec/admin-api.md, "Retention").
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace parley::cli {

struct RetentionCommand {
  CLI::App* show = nullptr;
  CLI::App* set = nullptr;
  CLI::App* purge = nullptr;
  std::string target;    // "default" or a conversation id
  std::string lifetime;  // 30d, 12h, forever, default
  bool json = false;
  bool dry_run = false;
  bool yes = false;
};

void add_retention_commands(CLI::App& app, RetentionCommand& cmd);
// Runs the parsed one; returns the exit code, or -1 if none of them was parsed.
int run_retention_command(const RetentionCommand& cmd, const std::string& data_dir);

}  // namespace parley::cli
