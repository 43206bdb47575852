#include "parleyd_backup.h"

#include <chrono>
#include <filesystem>
#include <iostream>

#include "parley/node/backup.h"
#include "parleyd_admin.h"

namespace parley::cli {

namespace http = web::http;
namespace json = web::json;
namespace node = parley::node;

void add_backup_commands(CLI::App& app, BackupCommand& cmd) {
  auto* b = app.add_subcommand("backup", "Back up the node, check a backup, restore one");
  b->require_subcommand(1);
  cmd.create = b->add_subcommand(
      "create", "Online snapshot of the running node (database, node key, config) into DIR");
  cmd.create->add_option("DIR", cmd.dir, "A new or empty directory")->required();
  cmd.create->add_flag("--json", cmd.json, "JSON output");
  cmd.verify = b->add_subcommand(
      "verify", "Check a backup: manifest, file hashes, database integrity, node key");
  cmd.verify->add_option("DIR", cmd.dir, "The backup directory")->required();
  cmd.verify->add_flag("--json", cmd.json, "JSON output");
  cmd.restore = b->add_subcommand(
      "restore",
      "Install a backup in --data (node stopped): raises the node's epoch, withdraws one-time "
      "prekeys; what the directory held is moved aside");
  cmd.restore->add_option("DIR", cmd.dir, "The backup directory")->required();
  cmd.restore->add_flag("--yes", cmd.yes, "Do not ask when --data already holds a node");
  cmd.restore->add_flag("--json", cmd.json, "JSON output");
}

bool backup_needs_no_data(const BackupCommand& cmd) { return cmd.verify && cmd.verify->parsed(); }

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int create(const BackupCommand& cmd, const std::string& data_dir) {
  std::error_code ec;
  const auto abs = std::filesystem::absolute(cmd.dir, ec).lexically_normal().string();
  if (!cmd.json) std::cerr << "Backing up to " << abs << " ...\n";
  json::value body;
  body["dir"] = json::value::string(abs);
  auto r = admin_call(data_dir, http::methods::POST, "/backup", body);
  if (!r.ok()) return fail(r.error());
  if (cmd.json) {
    std::cout << r->serialize() << "\n";
    return kOk;
  }
  std::cout << "Backup of " << r->at("node").as_string() << " written to " << abs << " ("
            << r->at("bytes").as_number().to_int64() << " bytes in "
            << r->at("millis").as_number().to_int64() << " ms). It holds the node's private key: "
            << "keep it as safe as the data directory.\n";
  return kOk;
}

int verify(const BackupCommand& cmd) {
  const auto report = node::verify_backup(cmd.dir);
  if (cmd.json) {
    json::value v;
    v["ok"] = json::value::boolean(report.ok());
    json::value checks = json::value::array(report.checks.size());
    for (std::size_t i = 0; i < report.checks.size(); ++i) {
      json::value c;
      c["check"] = json::value::string(report.checks[i].name);
      c["ok"] = json::value::boolean(report.checks[i].ok);
      c["detail"] = json::value::string(report.checks[i].detail);
      checks[i] = c;
    }
    v["checks"] = checks;
    if (report.manifest) {
      v["node"] = json::value::string(report.manifest->node);
      v["created_ms"] = json::value::number(static_cast<int64_t>(report.manifest->created_ms));
      v["epoch"] = json::value::number(static_cast<uint64_t>(report.manifest->epoch));
    }
    std::cout << v.serialize() << "\n";
  } else {
    for (const auto& c : report.checks) {
      std::printf("%-8s %-12s %s\n", c.ok ? "ok" : "problem", c.name.c_str(), c.detail.c_str());
    }
    if (report.manifest) {
      std::printf("backup of %s taken %s\n", report.manifest->node.c_str(),
                  iso_time(report.manifest->created_ms).c_str());
    }
    std::printf("%s\n", report.ok() ? "The backup is complete and intact."
                                    : "The backup is damaged or incomplete: do not restore it.");
  }
  return report.ok() ? kOk : kFail;
}

int restore(const BackupCommand& cmd, const std::string& data_dir) {
  std::error_code ec;
  if (std::filesystem::exists(data_dir + "/parley.db", ec) &&
      !confirmed("Replace the node in " + data_dir + " with the backup", "restore", cmd.yes)) {
    return ::isatty(STDIN_FILENO) ? kRefused : kUsage;
  }
  auto r = node::restore_backup(cmd.dir, data_dir, now_ms());
  if (!r.ok()) {
    if (r.error().code == "locked") {
      std::cerr << "parleyd: " << r.error().message << "; stop it before restoring\n";
      return kLocked;
    }
    if (r.error().code == "bad_backup") {
      std::cerr << "parleyd: " << r.error().message << "\n";
      return kRefused;
    }
    return fail(r.error());
  }
  if (cmd.json) {
    json::value v;
    v["node"] = json::value::string(r->manifest.node);
    v["backup_created_ms"] = json::value::number(static_cast<int64_t>(r->manifest.created_ms));
    v["epoch"] = json::value::number(static_cast<uint64_t>(r->new_epoch));
    v["prekeys_withdrawn"] = json::value::number(static_cast<int64_t>(r->prekeys_withdrawn));
    v["counters_advanced_by"] = json::value::number(static_cast<int64_t>(r->counters_advanced_by));
    v["moved_aside"] = json::value::string(r->moved_aside);
    std::cout << v.serialize() << "\n";
    return kOk;
  }
  std::cout << "Restored " << r->manifest.node << " as of " << iso_time(r->manifest.created_ms)
            << " into " << data_dir << "\n"
            << "  epoch " << r->manifest.epoch << " -> " << r->new_epoch
            << " (peers count this node's events anew)\n"
            << "  " << r->prekeys_withdrawn
            << " one-time prekeys withdrawn (devices publish new ones)\n"
            << "  stream and conversation counters advanced by " << r->counters_advanced_by << "\n";
  if (!r->moved_aside.empty()) {
    std::cout << "  what the directory held is in " << r->moved_aside << "\n";
  }
  std::cout << "Next: parleyd serve --data " << data_dir << "\n";
  return kOk;
}

}  // namespace

int run_backup_command(const BackupCommand& cmd, const std::string& data_dir) {
  if (cmd.create && cmd.create->parsed()) return create(cmd, data_dir);
  if (cmd.verify && cmd.verify->parsed()) return verify(cmd);
  if (cmd.restore && cmd.restore->parsed()) return restore(cmd, data_dir);
  return -1;
}

}  // namespace parley::cli
