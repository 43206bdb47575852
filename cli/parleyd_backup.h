// `parleyd backup create|verify|restore` (spec/storage.md, "Backups").
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace parley::cli {

struct BackupCommand {
  CLI::App* create = nullptr;
  CLI::App* verify = nullptr;
  CLI::App* restore = nullptr;
  std::string dir;
  bool json = false;
  bool yes = false;
};

void add_backup_commands(CLI::App& app, BackupCommand& cmd);
// verify needs no data directory; the others do.
bool backup_needs_no_data(const BackupCommand& cmd);
// Runs the parsed one; returns the exit code, or -1 if none of them was parsed.
int run_backup_command(const BackupCommand& cmd, const std::string& data_dir);

}  // namespace parley::cli
