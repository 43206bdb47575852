// parleyd's people and abuse-report commands: `user sessions|kick|deactivate|reactivate|limit|
// unretire` and `report list|show|resolve`. They talk to the running node's admin API
// (spec/admin-api.md).
#pragma once

#include <cpprest/http_msg.h>
#include <cpprest/json.h>
#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <string>

#include "parley/result.h"

namespace parley::cli {

struct PeopleCommand {
  CLI::App *sessions = nullptr, *kick = nullptr, *deactivate = nullptr, *reactivate = nullptr,
           *limit = nullptr, *unretire = nullptr, *report_list = nullptr, *report_show = nullptr,
           *report_resolve = nullptr;
  std::string name;
  std::int64_t device = -1;  // kick: -1 for every device
  bool all = false, json = false, open_only = false, to_default = false;
  std::int64_t messages_per_minute = -1, burst = 0;
  std::int64_t report = 0;
  std::string note;
};

// Adds the commands under `user` and a new top-level `report`, bound to `cmd` (which must
// outlive the parse).
void add_people_commands(CLI::App& app, CLI::App& user, PeopleCommand& cmd);
// Whether the command line named one of them.
bool people_command_given(const PeopleCommand& cmd);
// Runs it; exit codes as parleyd's --help footer.
int run_people_command(const PeopleCommand& cmd, const std::string& data_dir);

}  // namespace parley::cli
