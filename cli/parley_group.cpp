#include "parley_group.h"

#include <cstdio>

#include "parley/address.h"
#include "parley/client/session.h"
#include "parley_output.h"

namespace parley::cli {

namespace {

using client::Session;

// The group id for GROUP: an id as is, or the one group of the user with that name.
Result<std::string> resolve(Session& s, const std::string& group) {
  if (group.rfind("g:", 0) == 0) return group;
  PARLEY_ASSIGN_OR_RETURN(re, s.call("groups", wire::MapWriter()));
  PARLEY_ASSIGN_OR_RETURN(list, re.root().array("groups"));
  std::vector<std::string> found;
  for (const auto& g : list) {
    if (g.str_or("name", "", 256).value() == group) found.push_back(g.str("conv").value());
  }
  if (found.empty()) return make_error("not_found", "no group named " + group);
  if (found.size() > 1) {
    return make_error("conflict", "several groups are named " + group + "; use the group id");
  }
  return found.front();
}

Result<wire::Message> event(Session& s, const std::string& conv, const char* kind,
                            const std::string& target, const std::string& role,
                            const std::string* body) {
  wire::MapWriter f;
  f.add("conv", conv).add("kind", kind);
  if (!target.empty()) f.add("target", target);
  if (!role.empty()) f.add("role", role);
  if (body) f.add_bin("body", *body);
  return s.call("group_event", f);
}

int members(Session& s, const std::string& conv, bool json) {
  wire::MapWriter f;
  f.add("conv", conv);
  auto r = s.call("group_members", f);
  if (!r.ok()) return fail(r.error());
  auto list = r->root().array("members");
  if (!list.ok()) return fail(list.error());
  if (json) std::printf("[");
  bool first = true;
  for (const auto& m : *list) {
    const std::string user = m.str_or("user", "").value(), role = m.str_or("role", "").value();
    if (json) {
      std::printf("%s{\"user\":%s,\"role\":%s}", first ? "" : ",", json_str(user).c_str(),
                  json_str(role).c_str());
    } else {
      std::printf("%s %s\n", role.c_str(), user.c_str());
    }
    first = false;
  }
  if (json) std::printf("]\n");
  return kOk;
}

int list(Session& s, bool json) {
  auto r = s.call("groups", wire::MapWriter());
  if (!r.ok()) return fail(r.error());
  auto groups = r->root().array("groups");
  if (!groups.ok()) return fail(groups.error());
  if (json) std::printf("[");
  bool first = true;
  for (const auto& g : *groups) {
    const std::string conv = g.str_or("conv", "").value(), name = g.str_or("name", "", 256).value();
    const std::string role = g.str_or("role", "").value();
    const auto n = g.uint_or("members", 0).value(), unread = g.uint_or("unread", 0).value();
    if (json) {
      std::printf("%s{\"conv\":%s,\"name\":%s,\"role\":%s,\"members\":%llu,\"unread\":%llu}",
                  first ? "" : ",", json_str(conv).c_str(), json_str(name).c_str(),
                  json_str(role).c_str(), static_cast<unsigned long long>(n),
                  static_cast<unsigned long long>(unread));
    } else {
      std::printf("%-24s %-8s %4llu members %4llu unread  %s\n", printable(name).c_str(),
                  role.c_str(), static_cast<unsigned long long>(n),
                  static_cast<unsigned long long>(unread), conv.c_str());
    }
    first = false;
  }
  if (json) std::printf("]\n");
  return kOk;
}

// The group's events in the order every member's node agrees on, with the text of the messages
// this device could decrypt.
int history(Session& s, client::Profile& profile, const std::string& conv, bool json) {
  if (auto st = s.open_pending(); !st.ok()) return fail(st.error());
  if (json) std::printf("[");
  bool first = true;
  for (std::uint64_t from = 0;;) {
    wire::MapWriter f;
    f.add("conv", conv).add("from", from).add("limit", std::uint64_t{500});
    auto r = s.call("group_history", f);
    if (!r.ok()) return fail(r.error());
    auto events = r->root().array("events");
    if (!events.ok()) return fail(events.error());
    for (const auto& e : *events) {
      const std::string id = e.str_or("id", "").value(), kind = e.str_or("kind", "").value();
      const std::string author = e.str_or("author", "", 320).value();
      const std::string target = e.str_or("target", "", 320).value();
      const std::string role = e.str_or("role", "").value();
      const bool valid = e.boolean_or("valid", true).value();
      const auto wall = e.sint("wall_ms").value_or(0);
      std::string text, why;
      if (kind == "message") {
        auto m = profile.find_by_id(conv, id);
        if (m.ok() && *m) {
          why = (*m)->e2e;
          text = (*m)->body;
        } else {
          why = "not received on this device";
        }
      }
      if (json) {
        std::printf(
            "%s{\"id\":%s,\"kind\":%s,\"author\":%s,\"target\":%s,\"role\":%s,"
            "\"wall_ms\":%lld,\"valid\":%s",
            first ? "" : ",", json_str(id).c_str(), json_str(kind).c_str(),
            json_str(author).c_str(), json_str(kind == "create" ? "" : target).c_str(),
            json_str(role).c_str(), static_cast<long long>(wall), valid ? "true" : "false");
        if (kind == "message") {
          std::printf(",\"e2e\":%s,%s", json_str(why).c_str(), text_fields_json(text).c_str());
        }
        std::printf("}");
      } else if (kind == "message") {
        std::printf("%s: %s\n", author.c_str(),
                    printable(why == "ok" ? text : "[not decrypted: " + why + "]").c_str());
      } else {
        std::printf("* %s %s%s%s%s%s\n", author.c_str(), kind.c_str(),
                    kind == "create" || target.empty() ? "" : " ",
                    kind == "create" ? "" : target.c_str(), role.empty() ? "" : " as ",
                    role.c_str());
        if (!valid) std::printf("  (not allowed: no effect)\n");
      }
      first = false;
    }
    from += events->size();
    if (events->empty() || from >= r->root().uint_or("total", 0).value()) break;
  }
  if (json) std::printf("]\n");
  return kOk;
}

}  // namespace

int run_group(Session& s, client::E2e& e2e, client::Profile& profile, const GroupArgs& a) {
  if (a.action == "list") return list(s, a.json);
  if (a.action == "create") {
    wire::MapWriter f;
    wire::ArrayWriter m;
    for (const auto& who : a.members) {
      auto parsed = wire::parse_address(who);
      if (!parsed.ok()) return fail(parsed.error());
      m.push(parsed->str());
    }
    f.add("name", a.name).add("members", m);
    auto r = s.call("group_create", f);
    if (!r.ok()) return fail(r.error());
    const std::string conv = r->root().str("conv").value();
    if (a.json) {
      std::printf("{\"conv\":%s,\"name\":%s}\n", json_str(conv).c_str(), json_str(a.name).c_str());
    } else {
      std::printf("%s\n", conv.c_str());
    }
    return kOk;
  }
  auto conv = resolve(s, a.group);
  if (!conv.ok()) return fail(conv.error());
  if (a.action == "members") return members(s, *conv, a.json);
  if (a.action == "history") return history(s, profile, *conv, a.json);
  Result<wire::Message> r = make_error("bad_request", "unknown group command " + a.action);
  if (a.action == "send") {
    wire::MapWriter f;
    f.add("conv", *conv);
    auto m = s.call("group_members", f);
    if (!m.ok()) return fail(m.error());
    std::vector<std::string> users;
    for (const auto& v : m->root().array("members").value_or(std::vector<wire::View>{})) {
      users.push_back(v.str_or("user", "", 320).value());
    }
    auto body = e2e.seal_group(s, *conv, users, a.text);
    if (!body.ok()) return fail(body.error());
    r = event(s, *conv, "message", "", "", &*body);
    if (r.ok()) {
      const std::string id = r->root().str("event_id").value();
      if (auto st = e2e.remember_sent(id, *conv, a.text, *body); !st.ok()) return fail(st.error());
      std::printf("SENT %s %s\n", conv->c_str(), id.c_str());
      return kOk;
    }
  } else if (a.action == "add" || a.action == "remove" || a.action == "role") {
    auto who = wire::parse_address(a.address);
    if (!who.ok()) return fail(who.error());
    r = event(s, *conv, a.action == "role" ? "role" : a.action.c_str(), who->str(), a.role,
              nullptr);
  } else if (a.action == "leave") {
    r = event(s, *conv, "leave", "", "", nullptr);
  }
  if (!r.ok()) return fail(r.error());
  std::printf("OK %s %s %s\n", a.action.c_str(), conv->c_str(),
              r->root().str("event_id").value().c_str());
  return kOk;
}

}  // namespace parley::cli
