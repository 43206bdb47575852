#include "parleyd_config.h"

#include <unistd.h>

#include <cpprest/json.h>
#include <iostream>

#include "parley/crypto/secret.h"
#include "parley/node/config_check.h"

namespace parley::cli {

namespace json = web::json;
using node::CheckResult;

void add_config_commands(CLI::App& app, ConfigCommand& cmd) {
  auto* config = app.add_subcommand("config", "Check the node's configuration and surroundings");
  config->require_subcommand(1);
  cmd.check = config->add_subcommand(
      "check",
      "Validate config.toml, file modes, the database, ports, the TLS certificate (dates, "
      "names), peers' reachability and /.well-known/parley; each check prints ok, warning or "
      "problem with a hint. Reads only; safe while the node runs. Exit 0: no problems, 1: "
      "problems found");
  auto& c = cmd;
  cmd.check->add_flag("--json", c.json, "One JSON document: {ok, problems, warnings, checks}");
  cmd.check->add_flag("--offline", c.offline, "Skip the network checks (peers, .well-known)");
  cmd.check->add_option("--timeout", c.timeout_seconds, "Seconds per network request (5)")
      ->check(CLI::Range(1, 120));
}

int run_config_check(const ConfigCommand& cmd, const std::string& data_dir) {
  crypto::init();
  node::CheckOptions o;
  o.network = !cmd.offline;
  o.timeout_seconds = cmd.timeout_seconds;
  const bool tty = ::isatty(STDOUT_FILENO);
  const auto print = [&](const CheckResult& r) {
    if (cmd.json) return;
    const char* level = node::to_string(r.level);
    const char* color = !tty                                      ? ""
                        : r.level == CheckResult::Level::kOk      ? "\033[32m"
                        : r.level == CheckResult::Level::kWarning ? "\033[33m"
                                                                  : "\033[31m";
    std::printf("%s%-8s%s %-11s %s\n", color, level, tty ? "\033[0m" : "", r.check.c_str(),
                r.detail.c_str());
    if (!r.hint.empty()) std::printf("%-20s hint: %s\n", "", r.hint.c_str());
    std::fflush(stdout);
  };
  const auto results = node::check_node(data_dir, o, print);
  int problems = 0, warnings = 0;
  for (const auto& r : results) {
    problems += r.level == CheckResult::Level::kProblem;
    warnings += r.level == CheckResult::Level::kWarning;
  }
  if (cmd.json) {
    json::value doc;
    json::value arr = json::value::array(results.size());
    for (std::size_t i = 0; i < results.size(); ++i) {
      json::value v;
      v["check"] = json::value::string(results[i].check);
      v["status"] = json::value::string(node::to_string(results[i].level));
      v["detail"] = json::value::string(results[i].detail);
      v["hint"] = json::value::string(results[i].hint);
      arr[i] = v;
    }
    doc["ok"] = json::value::boolean(problems == 0);
    doc["problems"] = json::value::number(problems);
    doc["warnings"] = json::value::number(warnings);
    doc["checks"] = arr;
    std::cout << doc.serialize() << "\n";
  } else {
    std::printf("%d problem%s, %d warning%s\n", problems, problems == 1 ? "" : "s", warnings,
                warnings == 1 ? "" : "s");
  }
  return problems == 0 ? 0 : 1;
}

}  // namespace parley::cli
