#include "parleyd_people.h"

#include "parleyd_admin.h"
#include "printable.h"

#include <cstdio>
#include <ctime>
#include <iostream>

namespace parley::cli {

namespace http = web::http;
namespace json = web::json;

namespace {

std::string when(std::int64_t ms) { return ms > 0 ? iso_time(ms) : "never"; }

std::string segment(const std::string& s) { return web::uri::encode_data_string(s); }
std::int64_t i64(const json::value& v, const char* f) { return v.at(f).as_number().to_int64(); }
std::string str(const json::value& v, const char* f) { return v.at(f).as_string(); }

int print_json(const json::value& v) {
  std::cout << v.serialize() << "\n";
  return 0;
}

int sessions(const PeopleCommand& cmd, const std::string& data_dir) {
  auto r = admin_call(data_dir, http::methods::GET,
                      "/users/" + segment(cmd.name) + "/sessions" + (cmd.all ? "?all=true" : ""),
                      json::value());
  if (!r.ok()) return fail(r.error());
  if (cmd.json) return print_json(*r);
  std::printf("%-7s %-20s %-10s %-21s %s\n", "DEVICE", "LABEL", "STATE", "LAST SEEN", "ADDRESS");
  for (const auto& s : r->as_array()) {
    const auto& conns = s.at("connections").as_array();
    std::string address = s.at("last_address").as_string();
    if (conns.size() > 0) {
      address.clear();
      for (const auto& a : conns) address += (address.empty() ? "" : ",") + a.as_string();
    }
    const char* state = conns.size() > 0              ? "connected"
                        : s.at("signed_in").as_bool() ? "signed-in"
                                                      : "ended";
    std::printf("%-7lld %-20s %-10s %-21s %s\n", static_cast<long long>(i64(s, "device")),
                printable(str(s, "label")).c_str(), state, when(i64(s, "last_seen_ms")).c_str(),
                address.empty() ? "-" : address.c_str());
  }
  return 0;
}

int kick(const PeopleCommand& cmd, const std::string& data_dir) {
  json::value body = json::value::object();
  if (cmd.device >= 0) body["device"] = json::value::number(static_cast<int64_t>(cmd.device));
  auto r = admin_call(data_dir, http::methods::POST, "/users/" + segment(cmd.name) + "/kick", body);
  if (!r.ok()) return fail(r.error());
  std::printf(
      "Signed out %lld device(s) of %s and closed %lld connection(s); they must log in "
      "again\n",
      static_cast<long long>(i64(*r, "devices_signed_out")), cmd.name.c_str(),
      static_cast<long long>(i64(*r, "connections_closed")));
  return 0;
}

int limit(const PeopleCommand& cmd, const std::string& data_dir) {
  const std::string path = "/users/" + segment(cmd.name) + "/limit";
  Result<json::value> r = make_error("internal", "");
  if (cmd.to_default) {
    json::value body;
    body["default"] = json::value::boolean(true);
    r = admin_call(data_dir, http::methods::PUT, path, body);
  } else if (cmd.messages_per_minute >= 0) {
    json::value body;
    body["messages_per_minute"] =
        json::value::number(static_cast<int64_t>(cmd.messages_per_minute));
    if (cmd.burst > 0) body["burst"] = json::value::number(static_cast<int64_t>(cmd.burst));
    r = admin_call(data_dir, http::methods::PUT, path, body);
  } else {
    r = admin_call(data_dir, http::methods::GET, path, json::value());
  }
  if (!r.ok()) return fail(r.error());
  if (cmd.json) return print_json(*r);
  const auto rate = i64(*r, "messages_per_minute");
  std::printf("%s: %s%s\n", cmd.name.c_str(),
              rate == 0 ? "unlimited"
                        : (std::to_string(rate) + " messages per minute, burst " +
                           std::to_string(i64(*r, "burst")))
                              .c_str(),
              r->at("override").as_bool() ? " (set for this user)" : " (node default)");
  return 0;
}

int report_list(const PeopleCommand& cmd, const std::string& data_dir) {
  auto r = admin_call(data_dir, http::methods::GET,
                      cmd.open_only ? "/reports?open=true" : "/reports", json::value());
  if (!r.ok()) return fail(r.error());
  if (cmd.json) return print_json(*r);
  std::printf("%-6s %-9s %-21s %-28s %-28s %-5s %s\n", "ID", "STATE", "FILED", "REPORTER", "SENDER",
              "TEXT", "REASON");
  for (const auto& rep : r->as_array()) {
    std::string reason = printable(str(rep, "reason"));
    if (reason.size() > 40) reason = reason.substr(0, 37) + "...";
    std::printf("%-6lld %-9s %-21s %-28s %-28s %-5s %s\n", static_cast<long long>(i64(rep, "id")),
                str(rep, "state").c_str(), when(i64(rep, "created_ms")).c_str(),
                str(rep, "reporter").c_str(), str(rep, "sender").c_str(),
                rep.at("has_text").as_bool() ? "yes" : "no", reason.c_str());
  }
  return 0;
}

int report_show(const json::value& rep) {
  std::printf("report      %lld (%s)\n", static_cast<long long>(i64(rep, "id")),
              str(rep, "state").c_str());
  std::printf("filed       %s by %s (device %lld)\n", when(i64(rep, "created_ms")).c_str(),
              str(rep, "reporter").c_str(), static_cast<long long>(i64(rep, "reporter_device")));
  std::printf("message     %s %s%s from %s, sent %s\n", str(rep, "conv").c_str(),
              i64(rep, "cseq") ? ("#" + std::to_string(i64(rep, "cseq")) + " ").c_str() : "",
              str(rep, "msg_id").c_str(), str(rep, "sender").c_str(),
              when(i64(rep, "sent_ms")).c_str());
  std::printf("reason      %s\n", printable(str(rep, "reason")).c_str());
  if (rep.has_field("text") && rep.at("text").is_string()) {
    std::printf("text        %s\n", printable(str(rep, "text")).c_str());
  } else {
    std::printf("text        (not shared by the reporter)\n");
  }
  if (i64(rep, "resolved_ms")) {
    std::printf("resolved    %s: %s\n", when(i64(rep, "resolved_ms")).c_str(),
                printable(str(rep, "note")).c_str());
  }
  return 0;
}

}  // namespace

void add_people_commands(CLI::App& app, CLI::App& user, PeopleCommand& cmd) {
  cmd.sessions = user.add_subcommand(
      "sessions", "A user's devices: label, connected or not, last seen, remote address");
  cmd.sessions->add_option("NAME", cmd.name)->required();
  cmd.sessions->add_flag("--all", cmd.all, "Also devices whose session ended (logged out, kicked)");
  cmd.sessions->add_flag("--json", cmd.json, "JSON array output");
  cmd.kick = user.add_subcommand(
      "kick", "Sign out one device (or all): close its connections, revoke its session token");
  cmd.kick->add_option("NAME", cmd.name)->required();
  cmd.kick->add_option("DEVICE", cmd.device, "Device id, as `user sessions` shows (default: all)")
      ->check(CLI::NonNegativeNumber);
  cmd.deactivate = user.add_subcommand(
      "deactivate", "No login any more, sessions end; the user's data stays (reactivate undoes)");
  cmd.deactivate->add_option("NAME", cmd.name)->required();
  cmd.reactivate = user.add_subcommand("reactivate",
                                       "Let a deactivated user log in again (with their password)");
  cmd.reactivate->add_option("NAME", cmd.name)->required();
  cmd.limit = user.add_subcommand(
      "limit", "Show or set a user's send rate limit (default: the node's [limits])");
  cmd.limit->add_option("NAME", cmd.name)->required();
  auto* rate = cmd.limit
                   ->add_option("--messages-per-minute", cmd.messages_per_minute,
                                "Messages per minute for this user (0: unlimited)")
                   ->check(CLI::Range(0, 1 << 20));
  cmd.limit
      ->add_option("--burst", cmd.burst,
                   "How many may come at once (default: the smaller "
                   "of the node's burst and the rate)")
      ->check(CLI::Range(1, 1 << 20))
      ->needs(rate);
  cmd.limit->add_flag("--default", cmd.to_default, "Back to the node's default")->excludes(rate);
  cmd.limit->add_flag("--json", cmd.json, "JSON output");
  cmd.unretire = user.add_subcommand(
      "unretire", "Free a name retired by `user delete --erase` so it can be added again");
  cmd.unretire->add_option("NAME", cmd.name)->required();

  auto* report = app.add_subcommand("report", "Abuse reports users filed (node must be running)");
  report->require_subcommand(1);
  cmd.report_list = report->add_subcommand("list", "Reports, oldest first");
  cmd.report_list->add_flag("--open", cmd.open_only, "Only reports not resolved yet");
  cmd.report_list->add_flag("--json", cmd.json, "JSON array output (without reported text)");
  cmd.report_show = report->add_subcommand(
      "show", "One report, with the reported text when the reporter chose to share it");
  cmd.report_show->add_option("ID", cmd.report)->required()->check(CLI::PositiveNumber);
  cmd.report_show->add_flag("--json", cmd.json, "JSON object output");
  cmd.report_resolve = report->add_subcommand("resolve", "Close a report, with a note");
  cmd.report_resolve->add_option("ID", cmd.report)->required()->check(CLI::PositiveNumber);
  cmd.report_resolve->add_option("--note", cmd.note, "What was done (up to 1000 bytes)");
}

bool people_command_given(const PeopleCommand& cmd) {
  for (const CLI::App* sub : {cmd.sessions, cmd.kick, cmd.deactivate, cmd.reactivate, cmd.limit,
                              cmd.unretire, cmd.report_list, cmd.report_show, cmd.report_resolve}) {
    if (sub && sub->parsed()) return true;
  }
  return false;
}

int run_people_command(const PeopleCommand& cmd, const std::string& data_dir) {
  const auto done = [&](const Result<json::value>& r, const std::string& what) {
    if (!r.ok()) return fail(r.error());
    std::cout << what << "\n";
    return 0;
  };
  if (cmd.sessions->parsed()) return sessions(cmd, data_dir);
  if (cmd.kick->parsed()) return kick(cmd, data_dir);
  if (cmd.deactivate->parsed() || cmd.reactivate->parsed()) {
    const bool on = cmd.deactivate->parsed();
    return done(admin_call(data_dir, http::methods::POST,
                           "/users/" + segment(cmd.name) + (on ? "/deactivate" : "/reactivate"),
                           json::value()),
                on ? "Deactivated " + cmd.name +
                         ": their sessions ended, they cannot log in; their data stays"
                   : "Reactivated " + cmd.name + ": they can log in again with their password");
  }
  if (cmd.limit->parsed()) return limit(cmd, data_dir);
  if (cmd.unretire->parsed()) {
    return done(admin_call(data_dir, http::methods::DEL, "/retired-names/" + segment(cmd.name),
                           json::value()),
                "The name " + cmd.name + " is free again");
  }
  if (cmd.report_list->parsed()) return report_list(cmd, data_dir);
  const std::string path = "/reports/" + std::to_string(cmd.report);
  if (cmd.report_show->parsed()) {
    auto r = admin_call(data_dir, http::methods::GET, path, json::value());
    if (!r.ok()) return fail(r.error());
    return cmd.json ? print_json(*r) : report_show(*r);
  }
  json::value body = json::value::object();
  if (!cmd.note.empty()) body["note"] = json::value::string(cmd.note);
  return done(admin_call(data_dir, http::methods::POST, path + "/resolve", body),
              "Resolved report " + std::to_string(cmd.report));
}

}  // namespace parley::cli
