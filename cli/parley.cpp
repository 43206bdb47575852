// parley: the user client. Every command that talks to the node first takes in what arrived
// while it was away (stored in the local profile); `sync` and `listen` also print it.
//
// Exit codes: 0 ok; 1 other error; 2 usage; 3 cannot connect or connection lost;
// 4 authentication (wrong password, too many failed logins, suspended, deactivated, not logged in,
// session ended); 5 refused (not found, not allowed, bad request, conflict, too large, identity
// changed, device not approved); 6 timed out; 7 rate limited (sending or reporting too fast).
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <set>

#include "anywhere_option.h"
#include "parley/address.h"
#include "parley/client/session.h"
#include "parley/crypto/secret.h"
#include "parley/utf8.h"
#include "parley_group.h"
#include "parley_output.h"
#include "parley_report.h"

namespace {

using namespace parley;
using client::Profile;
using client::Session;
using namespace parley::cli;

volatile std::sig_atomic_t g_stop = 0;

struct Printer {
  bool json = false;
  int messages = 0;  // MSG lines printed
  // Users this user blocks: their group messages reach this device (with the keys they carry)
  // but are not shown (spec/client-protocol.md section 9).
  std::set<std::string> blocked;

  // A message once decrypted (or with the reason it could not be).
  void message(const client::StoredMessage& m, const std::string& e2e) {
    if (m.conv.rfind("g:", 0) == 0 && blocked.count(m.from)) return;
    ++messages;
    const std::string shown = e2e == "ok" ? m.body : "[not decrypted: " + e2e + "]";
    if (json) {
      std::printf(
          "{\"kind\":\"msg\",\"conv\":%s,\"cseq\":%lld,\"msg_id\":%s,\"from\":%s,"
          "\"to\":%s,\"sent_ms\":%lld,\"e2e\":%s,%s}\n",
          json_str(m.conv).c_str(), static_cast<long long>(m.cseq), json_str(m.msg_id).c_str(),
          json_str(m.from).c_str(), json_str(m.to).c_str(), static_cast<long long>(m.sent_ms),
          json_str(e2e).c_str(), text_fields_json(m.body).c_str());
    } else {
      std::printf("MSG %s #%lld %s -> %s: %s\n", m.conv.c_str(), static_cast<long long>(m.cseq),
                  m.from.c_str(), m.to.c_str(), printable(shown).c_str());
    }
    std::fflush(stdout);
  }

  void operator()(const wire::View& ev) {
    const std::string kind = ev.str_or("kind", "").value();
    if (kind == "msg") {
      return;  // messages are printed once decrypted (message())
    } else if (kind == "receipt") {
      const std::string status = ev.str_or("status", "").value();
      const auto where =
          status == "read" ? ev.uint_or("upto", 0).value() : ev.uint_or("cseq", 0).value();
      if (json) {
        std::printf("{\"kind\":\"receipt\",\"conv\":%s,\"status\":%s,\"by\":%s,\"%s\":%llu}\n",
                    json_str(ev.str_or("conv", "").value()).c_str(), json_str(status).c_str(),
                    json_str(ev.str_or("by", "").value()).c_str(),
                    status == "read" ? "upto" : "cseq", static_cast<unsigned long long>(where));
      } else {
        std::printf("RECEIPT %s %s by %s #%llu\n", ev.str_or("conv", "").value().c_str(),
                    status.c_str(), ev.str_or("by", "").value().c_str(),
                    static_cast<unsigned long long>(where));
      }
    } else if (kind == "friend") {
      if (json) {
        std::printf("{\"kind\":\"friend\",\"event\":%s,\"user\":%s,\"by\":%s}\n",
                    json_str(ev.str_or("event", "").value()).c_str(),
                    json_str(ev.str_or("user", "").value()).c_str(),
                    json_str(ev.str_or("by", "").value()).c_str());
      } else {
        std::printf("FRIEND %s %s\n", ev.str_or("event", "").value().c_str(),
                    ev.str_or("user", "").value().c_str());
      }
    }
    std::fflush(stdout);
  }
};

// Resolves TARGET (an address or a conversation id) to a conversation id.
// The other party of a 1:1 target given as an address or a conversation id seen before.
Result<std::string> peer_for(Profile& profile, const std::string& me, const std::string& target) {
  if (target.rfind("dm:", 0) != 0) {
    PARLEY_ASSIGN_OR_RETURN(a, wire::parse_address(target));
    return a.str();
  }
  PARLEY_ASSIGN_OR_RETURN(
      st, profile.db().prepare("SELECT sender, recipient FROM messages WHERE conv = ? LIMIT 1"));
  st.bind(1, target);
  PARLEY_ASSIGN_OR_RETURN(row, st.step());
  if (!row) return make_error("not_found", "no conversation " + target + " here; use an address");
  return st.column_text(0) == me ? st.column_text(1) : st.column_text(0);
}

Result<std::string> conv_for(const std::string& me, const std::string& target) {
  if (target.rfind("dm:", 0) == 0) return target;
  PARLEY_ASSIGN_OR_RETURN(a, wire::parse_address(target));
  return wire::dm_conversation_id(me, a.str());
}

Result<std::string> read_password(bool from_stdin) {
  std::string pw;
  if (from_stdin || !::isatty(STDIN_FILENO)) {
    if (!std::getline(std::cin, pw)) return make_error("bad_request", "no password on stdin");
    if (!pw.empty() && pw.back() == '\r') pw.pop_back();
    return pw;
  }
  termios old{};
  tcgetattr(STDIN_FILENO, &old);
  termios quiet = old;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  std::cerr << "password: " << std::flush;
  std::getline(std::cin, pw);
  std::cerr << "\n";
  tcsetattr(STDIN_FILENO, TCSANOW, &old);
  return pw;
}

std::string default_profile() {
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.parley";
}

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"parley — chat from the terminal through your Parley node"};
  app.footer(
      "Exit codes: 0 ok, 1 other error, 2 usage, 3 cannot connect or connection lost,\n"
      "4 authentication (wrong password, too many failed logins, suspended, deactivated,\n"
      "not logged in), 5 refused (not found, not allowed, bad request, conflict; a contact's\n"
      "identity key changed; this device not approved yet), 6 timed out, 7 rate limited\n"
      "(sending or reporting too fast: the message says when to retry).");
  app.require_subcommand(1);

  std::string address, server, device = "cli", target, text, msg_id, wait_for;
  bool password_stdin = false, json = false, off = false;
  double timeout_s = 30, for_s = 0;
  int count = 0, limit = 50;

  auto* login = app.add_subcommand("login", "Log in: registers this device and stores its session");
  login->add_option("ADDRESS", address, "Your address, like alice@example.org")->required();
  login->add_option("--server", server, "Your node's client address HOST:PORT")->required();
  login->add_flag("--password-stdin", password_stdin, "Read the password from stdin");
  login->add_option("--device", device, "A name for this device");
  bool new_identity = false;
  login->add_flag("--new-identity", new_identity,
                  "You lost every device: make a new identity key (your contacts are warned)");
  auto* logout = app.add_subcommand("logout", "End this device's session");

  auto* send = app.add_subcommand("send", "Send a message (prints SENT once the node stored it)");
  send->add_option("TARGET", target, "Address or conversation id")->required();
  send->add_option("TEXT", text, "The message")->required();
  send->add_option("--msg-id", msg_id, "Idempotency key; resending with it never duplicates");
  send->add_option("--wait", wait_for, "Also wait for: delivered | read")
      ->check(CLI::IsMember({"delivered", "read"}));
  send->add_option("--timeout", timeout_s, "Seconds to wait with --wait (default 30)");

  auto* sync = app.add_subcommand("sync", "Fetch and print what is new, then exit");
  sync->add_flag("--json", json, "One JSON object per line");
  auto* listen = app.add_subcommand("listen", "Stay connected; print messages and receipts");
  listen->add_flag("--json", json, "One JSON object per line");
  listen->add_option("--for", for_s, "Exit after this many seconds");
  listen->add_option("--count", count, "Exit after this many new messages");

  auto* history = app.add_subcommand("history", "Show a conversation from the local history");
  history
      ->add_option("TARGET", target,
                   "Address or conversation id; for a group, its id: the events in the order "
                   "every member's node agrees on")
      ->required();
  history->add_flag("--json", json, "JSON array");
  history->add_option("--limit", limit, "Most recent N messages (default 50)");
  auto* convs = app.add_subcommand("conversations", "Recent conversations with unread counts");
  convs->add_flag("--json", json, "JSON array");
  auto* read = app.add_subcommand("read", "Mark a conversation read (sends read receipts)");
  read->add_option("TARGET", target)->required();
  auto* pin = app.add_subcommand("pin", "Pin a conversation to the top");
  pin->add_option("TARGET", target)->required();
  pin->add_flag("--off", off, "Unpin");
  auto* hide = app.add_subcommand("hide", "Hide a conversation until a new message arrives");
  hide->add_option("TARGET", target)->required();
  hide->add_flag("--off", off, "Unhide");
  auto* del = app.add_subcommand("delete", "Delete a conversation for you (clears your history)");
  del->add_option("TARGET", target)->required();

  auto* fr = app.add_subcommand("friend", "Friend requests and friends");
  fr->require_subcommand(1);
  std::vector<std::pair<CLI::App*, std::string>> friend_cmds;
  for (const auto& [name, type, help] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"request", "friend_request", "Ask someone to be friends"},
           {"accept", "friend_accept", "Accept a friend request"},
           {"decline", "friend_decline", "Decline a friend request"},
           {"cancel", "friend_cancel", "Withdraw your friend request"},
           {"remove", "friend_remove", "End a friendship"}}) {
    auto* sub = fr->add_subcommand(name, help);
    sub->add_option("ADDRESS", address)->required();
    friend_cmds.emplace_back(sub, type);
  }
  auto* friend_list = fr->add_subcommand("list", "Friends and pending requests");
  friend_list->add_flag("--json", json, "JSON object");
  auto* block = app.add_subcommand("block", "Block a user: their messages and requests vanish");
  block->add_option("ADDRESS", address)->required();
  auto* unblock = app.add_subcommand("unblock", "Unblock a user");
  unblock->add_option("ADDRESS", address)->required();
  auto* blocks = app.add_subcommand("blocks", "Users you block");
  blocks->add_flag("--json", json, "JSON array");
  auto* lookup = app.add_subcommand(
      "lookup", "Whether a user exists (on any node) and their display name; exit 5 if not");
  lookup->add_option("ADDRESS", address)->required();
  lookup->add_flag("--json", json, "JSON object");
  auto* devices_cmd = app.add_subcommand(
      "devices", "A user's devices and whether their identity key vouches for them");
  std::string devices_of;
  devices_cmd->add_option("ADDRESS", devices_of, "Whose devices (default: yours)");
  devices_cmd->add_flag("--json", json, "JSON array");
  std::uint64_t approve_id = 0;
  auto* approve = devices_cmd->add_subcommand(
      "approve", "Vouch for another device of yours (from a device holding your identity key)");
  approve->add_option("DEVICE", approve_id, "Its device id, as its login printed")->required();
  std::uint64_t remove_id = 0;
  auto* remove_dev = devices_cmd->add_subcommand("remove",
                                                 "Take a lost or retired device of yours off your "
                                                 "list (from a device holding your identity key)");
  remove_dev->add_option("DEVICE", remove_id, "Its device id")->required();
  auto* keys_cmd = app.add_subcommand("keys", "This device's end-to-end keys");
  auto* keys_rotate = keys_cmd->add_subcommand(
      "rotate", "Replace this device's signed prekey now (it also happens weekly)");
  keys_cmd->require_subcommand(1);
  auto* verify = app.add_subcommand(
      "verify", "Safety number to compare with ADDRESS in person (alone on the last line)");
  verify->add_option("ADDRESS", address)->required();
  auto* trust = app.add_subcommand(
      "trust", "Accept ADDRESS's new identity key after checking the safety number");
  trust->add_option("ADDRESS", address)->required();
  std::string display_name;
  auto* profile_cmd = app.add_subcommand("profile", "Set what others see about you");
  profile_cmd->add_option("--display-name", display_name, "Your display name (up to 128 bytes)")
      ->required();

  ReportArgs report_args;
  auto* report = app.add_subcommand(
      "report", "Report a message to your node's admins (abuse); its text only if you choose");
  report->add_option("CONV", report_args.target, "Address or dm:… id (1:1), group id or name")
      ->required();
  report
      ->add_option("MSG", report_args.message,
                   "1:1: the message's #number as history shows, or its msg_id; group: the "
                   "event id (or a unique prefix)")
      ->required();
  report->add_option("--reason", report_args.reason, "Why you report it (up to 1000 bytes)");
  report->add_flag("--include-text", report_args.include_text,
                   "Also send the admins the message's text as this device shows it");

  GroupArgs group_args;
  auto* group = app.add_subcommand("group", "Groups: members on any node, one shared history");
  group->require_subcommand(1);
  auto group_cmd = [&](const char* name, const char* help) {
    auto* sub = group->add_subcommand(name, help);
    sub->callback([&group_args, name] { group_args.action = name; });
    return sub;
  };
  auto* g_create = group_cmd("create", "Make a group (prints its id); you are its admin");
  g_create->add_option("NAME", group_args.name, "The group's name (up to 128 bytes)")->required();
  g_create->add_option("--member", group_args.members, "A member's address (repeatable)");
  g_create->add_flag("--json", group_args.json, "Print {\"conv\",\"name\"}");
  auto* g_add = group_cmd("add", "Add a member (admins only)");
  g_add->add_option("GROUP", group_args.group, "Group id or name")->required();
  g_add->add_option("ADDRESS", group_args.address, "Who")->required();
  g_add->add_option("--role", group_args.role, "member (default) or admin");
  auto* g_remove = group_cmd("remove", "Remove a member (admins only); they stop receiving it");
  g_remove->add_option("GROUP", group_args.group, "Group id or name")->required();
  g_remove->add_option("ADDRESS", group_args.address, "Who")->required();
  auto* g_leave = group_cmd("leave", "Leave a group");
  g_leave->add_option("GROUP", group_args.group, "Group id or name")->required();
  auto* g_role = group_cmd("role", "Make a member an admin or a plain member (admins only)");
  g_role->add_option("GROUP", group_args.group, "Group id or name")->required();
  g_role->add_option("ADDRESS", group_args.address, "Who")->required();
  g_role->add_option("ROLE", group_args.role, "member or admin")->required();
  auto* g_members = group_cmd("members", "The members and their roles");
  g_members->add_option("GROUP", group_args.group, "Group id or name")->required();
  g_members->add_flag("--json", group_args.json, "JSON array of {user, role}");
  auto* g_send = group_cmd("send", "Send a message to the group (end-to-end encrypted)");
  g_send->add_option("GROUP", group_args.group, "Group id or name")->required();
  g_send->add_option("TEXT", group_args.text, "The message")->required();
  auto* g_edit = group_cmd("edit", "Change the text of one of your messages");
  g_edit->add_option("GROUP", group_args.group, "Group id or name")->required();
  g_edit->add_option("EVENT", group_args.event, "The message's id (or a unique prefix)")
      ->required();
  g_edit->add_option("TEXT", group_args.text, "The new text")->required();
  auto* g_recall = group_cmd("recall", "Take back a message (yours; admins: anyone's)");
  g_recall->add_option("GROUP", group_args.group, "Group id or name")->required();
  g_recall->add_option("EVENT", group_args.event, "The message's id (or a unique prefix)")
      ->required();
  auto* g_react = group_cmd("react", "React to a message");
  g_react->add_option("GROUP", group_args.group, "Group id or name")->required();
  g_react->add_option("EVENT", group_args.event, "The message's id (or a unique prefix)")
      ->required();
  g_react->add_option("REACTION", group_args.text, "The reaction, e.g. an emoji")->required();
  auto* g_read = group_cmd("read", "Mark the group read (up to the latest event, or EVENT)");
  g_read->add_option("GROUP", group_args.group, "Group id or name")->required();
  g_read->add_option("EVENT", group_args.event, "Read up to this event (id or unique prefix)");
  auto* g_list = group_cmd("list", "Your groups");
  g_list->add_flag("--json", group_args.json, "JSON array");
  // Last, so that every command and subcommand takes it (and shows it in its --help).
  const AnywhereOption profile_option(
      app, "--profile",
      "Profile directory of this device (or PARLEY_PROFILE; default ~/.parley); anywhere on the "
      "line",
      "PARLEY_PROFILE", default_profile());

  // The protocol carries text as UTF-8 (spec/client-protocol.md §2) and a node closes the
  // connection on anything else: refuse such an argument here, naming it, before sending.
  for (int i = 1; i < argc; ++i) {
    if (!wire::valid_utf8(argv[i])) {
      std::fprintf(stderr, "parley: argument %d is not valid UTF-8\n", i);
      return kUsage;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kOk : kUsage;
  }
  const auto profile_given = profile_option.value();
  if (!profile_given.ok()) {
    std::fprintf(stderr, "parley: %s\n", profile_given.error().message.c_str());
    return kUsage;
  }
  const std::string& profile_dir = *profile_given;
  crypto::init();
  std::signal(SIGINT, [](int) { g_stop = 1; });
  std::signal(SIGPIPE, SIG_IGN);

  auto profile_r = Profile::open(profile_dir);
  if (!profile_r.ok()) return fail(profile_r.error());
  Profile& profile = **profile_r;

  Printer printer;
  printer.json = json;
  const bool printing = *sync || *listen;
  Session::EventHandler handler = [&](const wire::View& ev) {
    if (printing) printer(ev);
  };
  client::E2e e2e(profile);
  client::E2e::Opened opened = [&](const client::StoredMessage& m, const std::string& why) {
    if (printing) printer.message(m, why);
  };

  if (*login) {
    auto pw = read_password(password_stdin);
    if (!pw.ok()) return fail(pw.error());
    auto s = Session::login(profile, server, address, *pw, device, handler);
    crypto::SecretBytes(std::move(*pw)).wipe();
    if (!s.ok()) {
      const int rc = fail(s.error());
      return s.error().code == "rate_limited" ? kAuth : rc;  // too many failed logins
    }
    (*s)->set_e2e(&e2e, opened);
    auto notice = e2e.publish(**s, new_identity);
    if (!notice.ok()) return fail(notice.error());
    if (auto st = (*s)->open_pending(); !st.ok()) return fail(st.error());
    std::printf("Logged in as %s on %s\n", (*s)->address().c_str(), server.c_str());
    if (!notice->empty()) std::fprintf(stderr, "%s\n", notice->c_str());
    return kOk;
  }

  auto session_r = Session::resume(profile, handler);
  if (!session_r.ok()) return fail(session_r.error());
  Session& s = **session_r;
  if (printing) {
    auto blocks = s.call("blocks", wire::MapWriter());
    if (!blocks.ok()) return fail(blocks.error());
    for (const auto& b : blocks->root().array("blocked").value_or({})) {
      printer.blocked.insert(b.as_str(320).value_or(""));
    }
  }
  s.set_e2e(&e2e, opened);
  if (auto st = s.open_pending(); !st.ok()) return fail(st.error());
  auto call = [&](const std::string& type, const wire::MapWriter& f) { return s.call(type, f); };

  if (*logout) {
    auto r = call("logout", wire::MapWriter());
    if (!r.ok() && r.error().code != "logged_out") return fail(r.error());
    (void)profile.clear_session();
    std::printf("Logged out\n");
    return kOk;
  }
  if (*sync) {
    // The backlog was printed while resuming and decrypting; events pushed live meanwhile were
    // stored and printed too, and are acknowledged here (delivered receipts depend on it).
    if (auto st = s.pump(0); !st.ok()) return fail(st.error());
    return kOk;
  }
  if (*listen) {
    const std::int64_t start = steady_ms();
    std::int64_t last_ping = start;
    while (!g_stop) {
      if (count > 0 && printer.messages >= count) break;
      if (for_s > 0 && steady_ms() - start >= static_cast<std::int64_t>(for_s * 1000)) break;
      if (auto st = s.pump(200); !st.ok()) return fail(st.error());
      if (steady_ms() - last_ping >= s.ping_interval_ms()) {
        auto r = call("ping", wire::MapWriter());
        if (!r.ok()) return fail(r.error());
        last_ping = steady_ms();
      }
    }
    return kOk;
  }
  if (*send) {
    if (msg_id.empty()) msg_id = crypto::hex_encode(crypto::random_bytes(12));
    auto peer = peer_for(profile, s.address(), target);
    if (!peer.ok()) return fail(peer.error());
    // End-to-end: one ciphertext per device of the peer and of our other devices.
    auto body = e2e.seal(s, *peer, msg_id, text);
    if (!body.ok()) return fail(body.error());
    wire::MapWriter f;
    f.add("to", *peer).add("msg_id", msg_id).add_bin("body", *body);
    auto r = call("send", f);
    if (!r.ok()) return fail(r.error());
    const std::string conv = *r->root().str("conv");
    const auto cseq = *r->root().uint("cseq");
    std::printf("SENT %s #%llu msg_id=%s%s\n", conv.c_str(), static_cast<unsigned long long>(cseq),
                msg_id.c_str(), *r->root().boolean_or("duplicate", false) ? " (duplicate)" : "");
    std::fflush(stdout);
    if (wait_for.empty()) return kOk;
    const std::int64_t deadline = steady_ms() + static_cast<std::int64_t>(timeout_s * 1000);
    while (steady_ms() < deadline && !g_stop) {
      if (auto st = s.pump(200); !st.ok()) return fail(st.error());
      auto m = profile.find_message(conv, static_cast<std::int64_t>(cseq));
      if (m.ok() && *m) {
        const std::string& status = (**m).status;
        if (status == "read" || (wait_for == "delivered" && status == "delivered")) {
          std::printf("RECEIPT %s %s #%llu\n", conv.c_str(), status.c_str(),
                      static_cast<unsigned long long>(cseq));
          return kOk;
        }
      }
    }
    std::cerr << "parley: no " << wait_for << " receipt within " << timeout_s << " s\n";
    return kTimeout;
  }
  if (*group) return run_group(s, e2e, profile, group_args);
  if (*report) return run_report(s, profile, report_args);
  if (*history && target.rfind("g:", 0) == 0) {
    group_args.action = "history";
    group_args.group = target;
    group_args.json = json;
    return run_group(s, e2e, profile, group_args);
  }
  if (*history) {
    auto conv = conv_for(s.address(), target);
    if (!conv.ok()) return fail(conv.error());
    auto msgs = profile.history(*conv, limit);
    if (!msgs.ok()) return fail(msgs.error());
    if (json) std::printf("[");
    bool first = true;
    for (const auto& m : *msgs) {
      if (json) {
        std::printf(
            "%s{\"conv\":%s,\"cseq\":%lld,\"msg_id\":%s,\"from\":%s,\"to\":%s,"
            "\"sent_ms\":%lld,\"status\":%s,\"e2e\":%s,%s}",
            first ? "" : ",", json_str(m.conv).c_str(), static_cast<long long>(m.cseq),
            json_str(m.msg_id).c_str(), json_str(m.from).c_str(), json_str(m.to).c_str(),
            static_cast<long long>(m.sent_ms), json_str(m.status).c_str(), json_str(m.e2e).c_str(),
            text_fields_json(m.body).c_str());
      } else {
        std::printf("#%lld %s: %s%s\n", static_cast<long long>(m.cseq), m.from.c_str(),
                    printable(m.e2e == "ok" ? m.body : "[not decrypted: " + m.e2e + "]").c_str(),
                    m.from == s.address() ? (" [" + m.status + "]").c_str() : "");
      }
      first = false;
    }
    if (json) std::printf("]\n");
    return kOk;
  }
  if (*convs) {
    auto r = call("convs", wire::MapWriter());
    if (!r.ok()) return fail(r.error());
    auto list = r->root().array("convs");
    if (!list.ok()) return fail(list.error());
    if (json) std::printf("[");
    bool first = true;
    for (const auto& c : *list) {
      if (json) {
        std::printf(
            "%s{\"conv\":%s,\"peer\":%s,\"last_cseq\":%llu,\"last_ms\":%llu,"
            "\"unread\":%llu,\"pinned\":%s,\"hidden\":%s}",
            first ? "" : ",", json_str(*c.str("conv")).c_str(), json_str(*c.str("peer")).c_str(),
            static_cast<unsigned long long>(*c.uint("last_cseq")),
            static_cast<unsigned long long>(*c.uint("last_ms")),
            static_cast<unsigned long long>(*c.uint("unread")),
            *c.boolean("pinned") ? "true" : "false", *c.boolean("hidden") ? "true" : "false");
      } else {
        std::printf("%s%-32s %4llu unread%s  %s\n", *c.boolean("pinned") ? "* " : "  ",
                    c.str("peer")->c_str(), static_cast<unsigned long long>(*c.uint("unread")),
                    *c.boolean("hidden") ? " (hidden)" : "", c.str("conv")->c_str());
      }
      first = false;
    }
    if (json) std::printf("]\n");
    return kOk;
  }
  if (*read || *pin || *hide || *del) {
    auto conv = conv_for(s.address(), target);
    if (!conv.ok()) return fail(conv.error());
    wire::MapWriter f;
    f.add("conv", *conv);
    std::string type = *read ? "read" : *pin ? "pin" : *hide ? "hide" : "clear";
    if (*read) f.add("upto", std::uint64_t{1} << 62);
    if (*pin || *hide) f.add("on", !off);
    auto r = call(type, f);
    if (!r.ok()) return fail(r.error());
    std::printf("OK %s %s\n", type.c_str(), conv->c_str());
    return kOk;
  }
  for (const auto& [sub, type] : friend_cmds) {
    if (!*sub) continue;
    wire::MapWriter f;
    f.add("user", address);
    auto r = call(type, f);
    if (!r.ok()) return fail(r.error());
    std::printf("OK %s %s\n", type.c_str(), address.c_str());
    return kOk;
  }
  if (*block || *unblock) {
    wire::MapWriter f;
    f.add("user", address);
    auto r = call(*block ? "block" : "unblock", f);
    if (!r.ok()) return fail(r.error());
    std::printf("OK %s %s\n", *block ? "block" : "unblock", address.c_str());
    return kOk;
  }
  if (*approve) {
    if (auto st = e2e.approve(s, approve_id); !st.ok()) return fail(st.error());
    std::printf("OK device %llu approved\n", static_cast<unsigned long long>(approve_id));
    return kOk;
  }
  if (*keys_rotate) {
    auto r = e2e.rotate_signed_prekey(s, true);
    if (!r.ok()) return fail(r.error());
    std::printf("OK signed prekey replaced\n");
    return kOk;
  }
  if (*remove_dev) {
    if (auto st = e2e.remove_device(s, remove_id); !st.ok()) return fail(st.error());
    std::printf("OK device %llu removed\n", static_cast<unsigned long long>(remove_id));
    return kOk;
  }
  if (*devices_cmd) {
    const std::string who = devices_of.empty() ? s.address() : devices_of;
    auto list = e2e.devices(s, who);
    if (!list.ok()) return fail(list.error());
    if (json) std::printf("[");
    bool first = true;
    for (const auto& d : *list) {
      if (json) {
        std::printf("%s{\"device\":%llu,\"trusted\":%s,\"this_device\":%s,\"fingerprint\":%s}",
                    first ? "" : ",", static_cast<unsigned long long>(d.device),
                    d.trusted ? "true" : "false", d.self ? "true" : "false",
                    json_str(d.fingerprint).c_str());
      } else {
        std::printf("device %llu %s%s %s\n", static_cast<unsigned long long>(d.device),
                    d.trusted ? "trusted" : "NOT TRUSTED (not in the signed device list)",
                    d.self ? " (this device)" : "", d.fingerprint.c_str());
      }
      first = false;
    }
    if (json) std::printf("]\n");
    return kOk;
  }
  if (*verify) {
    auto number = e2e.safety_number(s, address);
    if (!number.ok()) return fail(number.error());
    std::printf("Safety number with %s (compare it with theirs):\n%s\n", address.c_str(),
                number->c_str());
    return kOk;
  }
  if (*trust) {
    if (auto st = e2e.trust(s, address); !st.ok()) return fail(st.error());
    std::printf("OK trusting the current identity key of %s\n", address.c_str());
    return kOk;
  }
  if (*lookup) {
    wire::MapWriter f;
    f.add("address", address);
    auto r = call("lookup", f);
    if (!r.ok()) return fail(r.error());
    auto exists_r = r->root().boolean("exists");
    if (!exists_r.ok()) return fail(exists_r.error());
    const bool exists = *exists_r;
    auto name_r = r->root().str_or("display_name", "", 128);
    const std::string name = name_r.ok() ? *name_r : "";
    if (json) {
      std::printf("{\"address\":%s,\"exists\":%s,\"display_name\":%s}\n", json_str(address).c_str(),
                  exists ? "true" : "false", json_str(name).c_str());
    } else if (exists) {
      std::printf("%s exists%s%s\n", address.c_str(), name.empty() ? "" : ": ",
                  printable(name).c_str());
    } else {
      std::printf("%s does not exist\n", address.c_str());
    }
    return exists ? kOk : kRefused;
  }
  if (*profile_cmd) {
    wire::MapWriter f;
    f.add("display_name", display_name);
    auto r = call("profile", f);
    if (!r.ok()) return fail(r.error());
    std::printf("OK display name %s\n", printable(display_name).c_str());
    return kOk;
  }
  if (*friend_list || *blocks) {
    auto r = call(*blocks ? "blocks" : "friends", wire::MapWriter());
    if (!r.ok()) return fail(r.error());
    const std::vector<std::string> keys =
        *blocks ? std::vector<std::string>{"blocked"}
                : std::vector<std::string>{"friends", "incoming", "outgoing"};
    if (json && *blocks) {
      std::printf("[");
    } else if (json) {
      std::printf("{");
    }
    bool first_key = true;
    for (const auto& k : keys) {
      auto arr = r->root().array(k);
      if (!arr.ok()) return fail(arr.error());
      if (json && !*blocks) std::printf("%s\"%s\":[", first_key ? "" : ",", k.c_str());
      bool first = true;
      for (const auto& v : *arr) {
        const std::string who = v.as_str().value();
        if (json) {
          std::printf("%s%s", first ? "" : ",", json_str(who).c_str());
        } else {
          std::printf("%s %s\n", k.c_str(), who.c_str());
        }
        first = false;
      }
      if (json && !*blocks) std::printf("]");
      first_key = false;
    }
    if (json) std::printf(*blocks ? "]\n" : "}\n");
    return kOk;
  }
  return kUsage;
}
