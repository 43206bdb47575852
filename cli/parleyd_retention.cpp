#include "parleyd_retention.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "parley/node/retention.h"
#include "parleyd_admin.h"

namespace parley::cli {

namespace http = web::http;
namespace node = parley::node;
namespace json = web::json;

void add_retention_commands(CLI::App& app, RetentionCommand& cmd) {
  auto* r = app.add_subcommand(
      "retention", "How long messages are kept, and purging what is older (node running)");
  r->require_subcommand(1);
  cmd.show = r->add_subcommand("show", "The node default, per-conversation lifetimes, last purge");
  cmd.show->add_flag("--json", cmd.json, "JSON output");
  cmd.set = r->add_subcommand(
      "set", "Set the node default or one conversation's lifetime (30d, 12h, 90m, forever)");
  cmd.set->add_option("TARGET", cmd.target, "'default' or a conversation id (dm:… or g:…)")
      ->required();
  cmd.set
      ->add_option("LIFETIME", cmd.lifetime,
                   "30d | 12h | 90m | 45s | forever; for a conversation also 'default' (follow "
                   "the node default again)")
      ->required();
  cmd.set->add_flag("--yes", cmd.yes, "Do not ask when the lifetime gets shorter");
  cmd.purge = r->add_subcommand(
      "purge", "Remove now what is past its lifetime (the node also does this on a schedule)");
  cmd.purge->add_flag("--dry-run", cmd.dry_run, "Only count what would be removed");
  cmd.purge->add_flag("--yes", cmd.yes, "Do not ask (it says what it would remove first)");
  cmd.purge->add_flag("--json", cmd.json, "JSON output (the final counts)");
}

namespace {

std::int64_t num(const json::value& v, const char* field) {
  return v.has_field(field) ? v.at(field).as_number().to_int64() : 0;
}

int show(const RetentionCommand& cmd, const std::string& data_dir) {
  auto r = admin_call(data_dir, http::methods::GET, "/retention", json::value());
  if (!r.ok()) return fail(r.error());
  if (cmd.json) {
    std::cout << r->serialize() << "\n";
    return kOk;
  }
  std::printf("default lifetime  %s\n", r->at("default").as_string().c_str());
  const auto every = num(*r, "purge_interval_seconds");
  std::printf("scheduled purge   %s\n",
              every ? ("every " + node::format_lifetime(every)).c_str() : "off (by hand only)");
  const auto& last = r->at("last_purge");
  if (last.is_null()) {
    std::printf("last purge        none since the node started\n");
  } else {
    std::printf("last purge        %s: %lld messages, %lld stream entries, %lld pages freed\n",
                iso_time(num(last, "finished_ms")).c_str(),
                static_cast<long long>(num(last, "messages")),
                static_cast<long long>(num(last, "stream_entries")),
                static_cast<long long>(num(last, "pages_freed")));
  }
  const auto& overrides = r->at("overrides").as_array();
  if (overrides.size() == 0) {
    std::printf("no conversation has its own lifetime\n");
    return kOk;
  }
  std::printf("\n%-36s %-10s %s\n", "CONVERSATION", "LIFETIME", "SET");
  for (const auto& o : overrides) {
    std::printf("%-36s %-10s %s\n", o.at("conv").as_string().c_str(),
                o.at("lifetime").as_string().c_str(), iso_time(num(o, "set_ms")).c_str());
  }
  return kOk;
}

int set(const RetentionCommand& cmd, const std::string& data_dir) {
  const bool node_default = cmd.target == "default";
  json::value body = json::value::object();
  if (cmd.lifetime != "default") {
    auto seconds = node::parse_lifetime(cmd.lifetime);
    if (!seconds.ok()) return fail(seconds.error());
    body["lifetime_seconds"] = json::value::number(static_cast<int64_t>(*seconds));
  } else if (node_default) {
    std::cerr << "parleyd: the node default needs a lifetime (30d, 12h, forever)\n";
    return kUsage;
  }
  // Shortening a lifetime is what removes messages (at the next purge): say so and ask.
  {
    auto current = admin_call(data_dir, http::methods::GET, "/retention", json::value());
    if (!current.ok()) return fail(current.error());
    std::int64_t now = num(*current, "default_seconds");
    if (!node_default) {
      for (const auto& o : current->at("overrides").as_array()) {
        if (o.at("conv").as_string() == cmd.target) now = num(o, "lifetime_seconds");
      }
    }
    const std::int64_t next = body.has_field("lifetime_seconds") ? num(body, "lifetime_seconds")
                                                                 : num(*current, "default_seconds");
    if (next > 0 && (now == 0 || next < now) &&
        !confirmed("Messages older than " + node::format_lifetime(next) + " in " +
                       (node_default ? std::string("every conversation without its own lifetime")
                                     : cmd.target) +
                       " will be removed at the next purge. Go on",
                   "yes", cmd.yes)) {
      return ::isatty(STDIN_FILENO) ? kRefused : kUsage;
    }
  }
  const std::string path = node_default
                               ? "/retention/default"
                               : "/retention/convs/" + web::uri::encode_data_string(cmd.target);
  auto r = admin_call(data_dir,
                      body.has_field("lifetime_seconds") ? http::methods::PUT : http::methods::DEL,
                      path, body);
  if (!r.ok()) return fail(r.error());
  if (node_default) {
    std::cout << "Node default lifetime: " << cmd.lifetime << "\n";
  } else if (cmd.lifetime == "default") {
    std::cout << cmd.target << " follows the node default again\n";
  } else {
    std::cout << cmd.target << " keeps messages for " << cmd.lifetime << "\n";
  }
  return kOk;
}

int purge(const RetentionCommand& cmd, const std::string& data_dir) {
  if (cmd.dry_run || !cmd.yes) {
    // What a purge now would remove: the answer of --dry-run, and what the question names.
    json::value body;
    body["dry_run"] = json::value::boolean(true);
    auto r = admin_call(data_dir, http::methods::POST, "/retention/purge", body);
    if (!r.ok()) return fail(r.error());
    const auto messages = num(*r, "messages"), entries = num(*r, "stream_entries");
    if (cmd.dry_run) {
      if (cmd.json) {
        std::cout << r->serialize() << "\n";
      } else {
        std::cout << "A purge now would remove " << messages << " messages and " << entries
                  << " delivered stream entries (dry run: nothing removed)\n";
      }
      return kOk;
    }
    if ((messages || entries) &&
        !confirmed("Remove " + std::to_string(messages) + " messages and " +
                       std::to_string(entries) + " delivered stream entries past their lifetime",
                   "purge", false)) {
      return ::isatty(STDIN_FILENO) ? kRefused : kUsage;
    }
  }
  // Step by step, so the node stays responsive and the admin sees progress.
  json::value body;
  body["limit"] = json::value::number(5000);
  for (;;) {
    auto r = admin_call(data_dir, http::methods::POST, "/retention/purge", body);
    if (!r.ok()) return fail(r.error());
    const bool done = r->at("done").as_bool();
    if (!cmd.json) {
      std::fprintf(stderr, "\r%-8s %lld messages, %lld stream entries, %lld pages freed%s",
                   r->at("phase").as_string().c_str(), static_cast<long long>(num(*r, "messages")),
                   static_cast<long long>(num(*r, "stream_entries")),
                   static_cast<long long>(num(*r, "pages_freed")), done ? "\n" : "");
    }
    if (!done) continue;
    if (cmd.json) {
      std::cout << r->serialize() << "\n";
    } else {
      std::cout << "Purged " << num(*r, "messages") << " messages and " << num(*r, "stream_entries")
                << " stream entries; " << num(*r, "pages_freed")
                << " pages given back to the file system\n";
    }
    return kOk;
  }
}

}  // namespace

int run_retention_command(const RetentionCommand& cmd, const std::string& data_dir) {
  if (cmd.show && cmd.show->parsed()) return show(cmd, data_dir);
  if (cmd.set && cmd.set->parsed()) return set(cmd, data_dir);
  if (cmd.purge && cmd.purge->parsed()) return purge(cmd, data_dir);
  return -1;
}

}  // namespace parley::cli
