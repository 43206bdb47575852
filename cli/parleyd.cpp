// parleyd: the Parley node. `init` and `serve` run locally; every other command talks to the
// running node through its admin API on loopback, so changes take effect at once.
//
// Exit codes: 0 ok; 1 failure (or config check problems); 2 usage; 3 node not running /
// unreachable; 4 not found; 5 refused (exists, conflict, bad input); 6 a node already serves
// this data directory.
#include <termios.h>
#include <unistd.h>

#include <cpprest/http_client.h>
#include <cpprest/json.h>
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "anywhere_option.h"
#include "parley/crypto/secret.h"
#include "parley/crypto/sign.h"
#include "parley/node/node.h"
#include "parleyd_admin.h"
#include "parleyd_backup.h"
#include "parleyd_config.h"
#include "parleyd_people.h"
#include "parleyd_retention.h"

namespace {

using parley::Error;
namespace node = parley::node;
namespace http = web::http;
namespace json = web::json;
using namespace parley::cli;  // NOLINT: exit codes, admin_call

// Reads a password from stdin (one line) or, on a terminal, prompts twice without echo.
parley::Result<std::string> read_password(bool from_stdin, const std::string& prompt) {
  std::string pw;
  if (from_stdin) {
    if (!std::getline(std::cin, pw))
      return parley::make_error("bad_request", "no password on stdin");
    if (!pw.empty() && pw.back() == '\r') pw.pop_back();
    return pw;
  }
  if (!::isatty(STDIN_FILENO)) {
    return parley::make_error("bad_request",
                              "stdin is not a terminal: use --password-stdin to pipe a password");
  }
  termios old{};
  tcgetattr(STDIN_FILENO, &old);
  termios quiet = old;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  std::string again;
  std::cerr << prompt << ": " << std::flush;
  std::getline(std::cin, pw);
  std::cerr << "\nagain: " << std::flush;
  std::getline(std::cin, again);
  std::cerr << "\n";
  tcsetattr(STDIN_FILENO, TCSANOW, &old);
  const bool same = pw == again;
  parley::crypto::SecretBytes(std::move(again)).wipe();
  if (!same) return parley::make_error("bad_request", "the passwords differ");
  return pw;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"parleyd — the Parley chat node"};
  app.footer(
      "Exit codes: 0 ok; 1 failure (internal, or config check found a problem); 2 usage;\n"
      "3 unreachable (node not running); 4 not found; 5 refused (exists, conflict, bad input);\n"
      "6 another parleyd serves the data directory. Listings take --json.");
  app.require_subcommand(1);

  // init
  auto* init = app.add_subcommand("init", "Create a node: config, node key, database");
  std::string name, client_listen, federation_listen, admin_listen, metrics_listen, dm_policy,
      pw_strength;
  init->add_option("--name", name, "The organization's domain (user@DOMAIN)")->required();
  init->add_option("--client-listen", client_listen,
                   "HOST:PORT for user devices (default 127.0.0.1:7420)");
  init->add_option("--federation-listen", federation_listen,
                   "HOST:PORT for other nodes (default 127.0.0.1:7421)");
  init->add_option("--admin-listen", admin_listen,
                   "HOST:PORT of the admin API, loopback (default 127.0.0.1:7422)");
  init->add_option("--metrics-listen", metrics_listen,
                   "HOST:PORT of /metrics, /health and /ready, loopback (default 127.0.0.1:7423)");
  init->add_option("--dm-policy", dm_policy,
                   "Who may open 1:1 chats: friends | organization | anyone");
  init->add_option("--password-hash", pw_strength, "Argon2id cost: interactive | moderate");
  bool plaintext_remote = false;
  init->add_flag("--allow-plaintext-remote", plaintext_remote,
                 "Allow a non-loopback --client-listen (only behind a TLS terminator)");

  auto* serve = app.add_subcommand("serve", "Run the node until SIGINT/SIGTERM");

  auto* key = app.add_subcommand("key", "The node's signing key");
  key->require_subcommand(1);
  auto* key_show = key->add_subcommand("show", "Print the node's public key (last line alone)");
  auto* key_rotate = key->add_subcommand(
      "rotate", "Replace the node key (node stopped); the old key stays verifiable");

  // user
  auto* user = app.add_subcommand("user", "Manage the node's users (node must be running)");
  user->require_subcommand(1);
  std::string user_name;
  bool password_stdin = false, json_out = false, yes = false;
  auto* user_add = user->add_subcommand("add", "Create a user");
  user_add->add_option("NAME", user_name, "User name (the part before @)")->required();
  user_add->add_flag("--password-stdin", password_stdin, "Read the password from stdin");
  std::string display_name;
  user_add->add_option("--display-name", display_name,
                       "What lookups show (users can change it with parley profile)");
  auto* user_list = user->add_subcommand("list", "List users");
  user_list->add_flag("--json", json_out, "JSON array output");
  key_show->add_flag("--json", json_out, "JSON output: {\"public_key\": ...}");
  auto* user_suspend =
      user->add_subcommand("suspend", "Suspend a user; live sessions close at once");
  user_suspend->add_option("NAME", user_name)->required();
  auto* user_unsuspend = user->add_subcommand("unsuspend", "Lift a suspension");
  user_unsuspend->add_option("NAME", user_name)->required();
  auto* user_delete = user->add_subcommand(
      "delete",
      "Delete a user: devices, keys, relations, stream (messages they sent stay in others' "
      "histories; the name can be added again). --erase removes those messages too and retires "
      "the name");
  user_delete->add_option("NAME", user_name)->required();
  user_delete->add_flag("--yes", yes, "Do not ask for confirmation");
  bool erase = false;
  user_delete->add_flag("--erase", erase,
                        "Also every message the user sent and the reports they filed; the name "
                        "is retired (`user unretire` frees it)");
  auto* user_reset =
      user->add_subcommand("reset-password", "Set a new password; ends all sessions");
  user_reset->add_option("NAME", user_name)->required();
  user_reset->add_flag("--password-stdin", password_stdin, "Read the password from stdin");

  // peer
  auto* peer = app.add_subcommand("peer", "Federation peers (node must be running)");
  peer->require_subcommand(1);
  std::string peer_name, peer_url, peer_key;
  auto* peer_add = peer->add_subcommand("add", "Add or update a peer; --key pins its node key");
  peer_add->add_option("NAME", peer_name, "The peer's node name (domain)")->required();
  peer_add->add_option("URL", peer_url, "Its federation base URL, https://HOST:PORT")->required();
  peer_add->add_option("--key", peer_key, "Its public key as printed by `parleyd key show`");
  auto* peer_list = peer->add_subcommand("list", "Peers with their state and queues");
  peer_list->add_flag("--json", json_out, "JSON array output");
  auto* peer_status =
      peer->add_subcommand("status", "Queue depth, oldest queued, last success/error");
  peer_status->add_option("NAME", peer_name, "One peer (default: all)");
  peer_status->add_flag("--json", json_out, "JSON output");
  auto* peer_remove = peer->add_subcommand("remove", "Forget a peer's static entry");
  peer_remove->add_option("NAME", peer_name)->required();
  auto* peer_deny = peer->add_subcommand("deny", "Refuse all federation traffic from a node");
  peer_deny->add_option("NAME", peer_name)->required();
  auto* peer_allow = peer->add_subcommand("allow", "Lift a deny");
  peer_allow->add_option("NAME", peer_name)->required();

  auto* conv = app.add_subcommand(
      "conv", "Replicated conversations (groups): members, nodes, clocks, counts; never content");
  conv->require_subcommand(1);
  std::string conv_id;
  auto* conv_list = conv->add_subcommand("list", "Every group this node holds");
  conv_list->add_flag("--json", json_out, "JSON array output");
  auto* conv_show = conv->add_subcommand("show", "One group: members and roles, nodes, clock");
  conv_show->add_option("ID", conv_id, "The group id (g: and 32 hex digits)")
      ->required()
      ->check(CLI::Validator(
          [](const std::string& id) { return id.empty() ? std::string("empty id") : ""; },
          "NONEMPTY"));
  conv_show->add_flag("--json", json_out, "JSON object output");
  auto* log = app.add_subcommand("log", "The running node's log");
  log->require_subcommand(1);
  auto* log_level = log->add_subcommand(
      "level", "Show the log level, or change it at once (until the next restart or reload)");
  std::string level;
  log_level->add_option("LEVEL", level, "trace | debug | info | warn | error | off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  log_level->add_flag("--json", json_out, "JSON output");
  auto* status = app.add_subcommand("status", "Uptime, users, connections, queues, database size");
  status->add_flag("--json", json_out, "JSON output");
  parley::cli::ConfigCommand config_cmd;
  parley::cli::add_config_commands(app, config_cmd);
  parley::cli::PeopleCommand people_cmd;
  parley::cli::add_people_commands(app, *user, people_cmd);
  parley::cli::RetentionCommand retention_cmd;
  parley::cli::add_retention_commands(app, retention_cmd);
  parley::cli::BackupCommand backup_cmd;
  parley::cli::add_backup_commands(app, backup_cmd);
  // Last, so that every command and subcommand takes it (and shows it in its --help).
  const parley::cli::AnywhereOption data_option(
      app, "--data", "Node data directory (or PARLEYD_DATA); anywhere on the line", "PARLEYD_DATA",
      "");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kOk : kUsage;
  }
  const auto data_given = data_option.value();
  if (!data_given.ok()) {
    std::cerr << "parleyd: " << data_given.error().message << "\n";
    return kUsage;
  }
  const std::string& data_dir = *data_given;
  if (parley::cli::backup_needs_no_data(backup_cmd)) {
    return parley::cli::run_backup_command(backup_cmd, data_dir);
  }
  if (data_dir.empty()) {
    std::cerr << "parleyd: --data DIR (or PARLEYD_DATA) is required\n";
    return kUsage;
  }

  if (*init) {
    node::InitOptions o;
    o.data_dir = data_dir;
    o.name = name;
    o.allow_plaintext_remote = plaintext_remote;
    auto hp = [](const std::string& s, std::optional<node::HostPort>& out) -> parley::Status {
      if (s.empty()) return parley::ok_status();
      auto r = node::parse_host_port(s);
      if (!r.ok()) return r.take_error();
      out = *r;
      return parley::ok_status();
    };
    for (auto [text, out] : {std::pair{&client_listen, &o.client_listen},
                             std::pair{&federation_listen, &o.federation_listen},
                             std::pair{&admin_listen, &o.admin_listen},
                             std::pair{&metrics_listen, &o.metrics_listen}}) {
      if (auto s = hp(*text, *out); !s.ok()) return fail(s.error());
    }
    if (!dm_policy.empty()) {
      auto p = node::parse_dm_policy(dm_policy);
      if (!p.ok()) return fail(p.error());
      o.direct_messages = *p;
    }
    if (!pw_strength.empty()) {
      auto p = parley::crypto::parse_password_strength(pw_strength);
      if (!p.ok()) return fail(p.error());
      o.password_strength = *p;
    }
    auto r = node::init_node(o);
    if (!r.ok()) return fail(r.error());
    std::cout << "Created node " << r->config.name << " in " << data_dir << "\n"
              << "  clients connect to " << r->config.client_listen.str() << "\n"
              << "  node key " << r->public_key << "\n"
              << "Next: parleyd serve --data " << data_dir << "\n";
    return kOk;
  }
  if (config_cmd.check->parsed()) return parley::cli::run_config_check(config_cmd, data_dir);
  if (const int rc = parley::cli::run_retention_command(retention_cmd, data_dir); rc >= 0) {
    return rc;
  }
  if (const int rc = parley::cli::run_backup_command(backup_cmd, data_dir); rc >= 0) return rc;
  if (*serve) {
    auto s = node::serve(data_dir);
    if (!s.ok()) return fail(s.error());
    return kOk;
  }
  if (*key_show) {
    parley::crypto::init();
    auto k = parley::crypto::load_signing_key(node::DataPaths{data_dir}.node_key());
    if (!k.ok()) return fail(k.error());
    if (json_out) {
      json::value v;
      v["public_key"] = json::value::string(parley::crypto::format_public_key(k->public_key()));
      std::cout << v.serialize() << "\n";
      return kOk;
    }
    std::cout << "Node key of " << data_dir << " (pin this on peers):\n"
              << parley::crypto::format_public_key(k->public_key()) << "\n";
    return kOk;
  }

  if (*key_rotate) {
    auto k = node::rotate_node_key(data_dir);
    if (!k.ok()) {
      if (k.error().code == "locked") {
        std::cerr << "parleyd: " << k.error().message << "; stop it before rotating the key\n";
        return kLocked;
      }
      return fail(k.error());
    }
    std::cout << "Rotated the node key of " << data_dir
              << ". Peers that pinned the old key must re-add this node with:\n"
              << *k << "\n";
    return kOk;
  }
  auto show = [&](const parley::Result<json::value>& r, const std::string& done) {
    if (!r.ok()) return fail(r.error());
    std::cout << done << "\n";
    return kOk;
  };
  if (*user_add || *user_reset) {
    auto pw = read_password(password_stdin, "password for " + user_name);
    if (!pw.ok()) return fail(pw.error());
    json::value body;
    body["password"] = json::value::string(*pw);
    parley::crypto::SecretBytes(std::move(*pw)).wipe();
    if (*user_add) {
      body["name"] = json::value::string(user_name);
      if (!display_name.empty()) body["display_name"] = json::value::string(display_name);
      auto r = admin_call(data_dir, http::methods::POST, "/users", body);
      if (!r.ok()) return fail(r.error());
      std::cout << "Added " << r->at("address").as_string() << "\n";
      return kOk;
    }
    return show(
        admin_call(data_dir, http::methods::POST, "/users/" + user_name + "/password", body),
        "Password of " + user_name + " reset; their sessions were ended");
  }
  if (parley::cli::people_command_given(people_cmd)) {
    return parley::cli::run_people_command(people_cmd, data_dir);
  }
  if (*user_list) {
    auto r = admin_call(data_dir, http::methods::GET, "/users", json::value());
    if (!r.ok()) return fail(r.error());
    if (json_out) {
      std::cout << r->serialize() << "\n";
      return kOk;
    }
    std::printf("%-40s %-10s %8s %12s  %s\n", "ADDRESS", "STATE", "DEVICES", "CONNECTIONS",
                "CREATED");
    for (const auto& u : r->as_array()) {
      std::printf("%-40s %-10s %8lld %12lld  %s\n", u.at("address").as_string().c_str(),
                  u.at("state").as_string().c_str(),
                  static_cast<long long>(u.at("devices").as_number().to_int64()),
                  static_cast<long long>(u.at("connections").as_number().to_int64()),
                  iso_time(u.at("created_ms").as_number().to_int64()).c_str());
    }
    return kOk;
  }
  if (*user_suspend) {
    return show(admin_call(data_dir, http::methods::POST, "/users/" + user_name + "/suspend",
                           json::value()),
                "Suspended " + user_name);
  }
  if (*user_unsuspend) {
    return show(admin_call(data_dir, http::methods::POST, "/users/" + user_name + "/unsuspend",
                           json::value()),
                "Unsuspended " + user_name);
  }
  if (*user_delete) {
    if (!yes) {
      if (!::isatty(STDIN_FILENO)) {
        std::cerr << "parleyd: deleting a user needs --yes when stdin is not a terminal\n";
        return kUsage;
      }
      std::cerr << (erase ? "Erase " + user_name +
                                " and ALL their data, also the messages they sent; the name is "
                                "retired"
                          : "Delete " + user_name + " and their data")
                << "? Type the name to confirm: ";
      std::string answer;
      std::getline(std::cin, answer);
      if (answer != user_name) {
        std::cerr << "parleyd: not confirmed; nothing deleted\n";
        return kRefused;
      }
    }
    if (erase) {
      return show(admin_call(data_dir, http::methods::POST, "/users/" + user_name + "/erase",
                             json::value()),
                  "Erased " + user_name + " and all their data; the name is retired");
    }
    return show(admin_call(data_dir, http::methods::DEL, "/users/" + user_name, json::value()),
                "Deleted " + user_name);
  }
  if (*peer_add) {
    json::value body;
    body["name"] = json::value::string(peer_name);
    body["url"] = json::value::string(peer_url);
    body["key"] = json::value::string(peer_key);
    return show(admin_call(data_dir, http::methods::POST, "/peers", body),
                "Peer " + peer_name + " at " + peer_url +
                    (peer_key.empty() ? " (key pinned on first contact)" : " (key pinned)"));
  }
  if (*peer_list || *peer_status) {
    auto r = *peer_status && !peer_name.empty()
                 ? admin_call(data_dir, http::methods::GET, "/peers/" + peer_name, json::value())
                 : admin_call(data_dir, http::methods::GET, "/peers", json::value());
    if (!r.ok()) return fail(r.error());
    if (json_out) {
      std::cout << r->serialize() << "\n";
      return kOk;
    }
    std::vector<json::value> rows;
    if (r->is_array()) {
      for (const auto& p : r->as_array()) rows.push_back(p);
    } else {
      rows.push_back(*r);
    }
    std::printf("%-28s %-8s %-6s %7s %-20s %s\n", "PEER", "STATE", "LISTED", "QUEUED",
                "LAST SUCCESS", "LAST ERROR");
    for (const auto& p : rows) {
      const auto last = p.at("last_success_ms").as_number().to_int64();
      const bool held = p.has_field("outbound_held") && p.at("outbound_held").as_bool();
      const bool listed = p.has_field("listed") && p.at("listed").as_bool();
      const bool unlisted_held =
          held && p.has_field("held_reason") && p.at("held_reason").as_string() == "not_listed";
      const std::string note = !held           ? p.at("last_error").as_string()
                               : unlisted_held ? "outbound held: not on the allowlist"
                                               : "outbound held: peer denied";
      std::printf("%-28s %-8s %-6s %7lld %-20s %s\n", p.at("name").as_string().c_str(),
                  p.at("state").as_string().c_str(), listed ? "yes" : "no",
                  static_cast<long long>(p.at("queued").as_number().to_int64()),
                  last ? iso_time(last).c_str() : "never", note.c_str());
    }
    return kOk;
  }
  if (*peer_remove) {
    return show(admin_call(data_dir, http::methods::DEL, "/peers/" + peer_name, json::value()),
                "Removed peer " + peer_name);
  }
  if (*peer_deny || *peer_allow) {
    const std::string verb = *peer_deny ? "deny" : "allow";
    return show(admin_call(data_dir, http::methods::POST, "/peers/" + peer_name + "/" + verb,
                           json::value()),
                (*peer_deny ? "Denied " : "Allowed ") + peer_name);
  }
  if (*conv_list || *conv_show) {
    // The id is one path segment whatever it holds (the colon, or a mistyped space or '?').
    auto r = admin_call(
        data_dir, http::methods::GET,
        *conv_show ? "/convs/" + web::uri::encode_data_string(conv_id) : std::string("/convs"),
        json::value());
    if (!r.ok()) return fail(r.error());
    if (json_out) {
      std::cout << r->serialize() << "\n";
      return kOk;
    }
    if (*conv_list) {
      std::printf("%-34s %7s %8s %8s  %s\n", "CONVERSATION", "MEMBERS", "EVENTS", "WAITING",
                  "NODES");
      for (const auto& c : r->as_array()) {
        std::string nodes;
        for (const auto& n : c.at("nodes").as_array()) {
          nodes += (nodes.empty() ? "" : ",") + n.as_string();
        }
        std::printf("%-34s %7zu %8lld %8lld  %s\n", c.at("conv").as_string().c_str(),
                    c.at("members").as_array().size(),
                    static_cast<long long>(c.at("events").as_number().to_int64()),
                    static_cast<long long>(c.at("buffered").as_number().to_int64()), nodes.c_str());
      }
      return kOk;
    }
    std::printf("conversation  %s\nevents        %lld\nwaiting       %lld\nequivocations %lld\n",
                r->at("conv").as_string().c_str(),
                static_cast<long long>(r->at("events").as_number().to_int64()),
                static_cast<long long>(r->at("buffered").as_number().to_int64()),
                static_cast<long long>(r->at("equivocations").as_number().to_int64()));
    std::printf("members\n");
    for (const auto& m : r->at("members").as_array()) {
      std::printf("  %-8s %s\n", m.at("role").as_string().c_str(),
                  m.at("user").as_string().c_str());
    }
    std::printf("nodes\n");
    for (const auto& n : r->at("nodes").as_array()) std::printf("  %s\n", n.as_string().c_str());
    std::printf("clock\n");
    for (const auto& [actor, seq] : r->at("clock").as_object()) {
      std::printf("  %s %lld\n", actor.c_str(), static_cast<long long>(seq.as_number().to_int64()));
    }
    return kOk;
  }
  if (*log_level) {
    json::value body;
    if (!level.empty()) body["level"] = json::value::string(level);
    auto r = admin_call(data_dir, level.empty() ? http::methods::GET : http::methods::PUT,
                        "/log-level", body);
    if (!r.ok()) return fail(r.error());
    if (json_out) {
      std::cout << r->serialize() << "\n";
    } else {
      std::cout << (level.empty() ? "log level: " : "log level now: ") << r->at("level").as_string()
                << "\n";
    }
    return kOk;
  }
  if (*status) {
    auto r = admin_call(data_dir, http::methods::GET, "/status", json::value());
    if (!r.ok()) return fail(r.error());
    if (json_out) {
      std::cout << r->serialize() << "\n";
      return kOk;
    }
    for (const auto& [k, v] : r->as_object()) {
      std::cout << k << ": " << (v.is_string() ? v.as_string() : v.serialize()) << "\n";
    }
    return kOk;
  }
  return kUsage;
}
