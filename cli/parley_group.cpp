#include "parley_group.h"

#include <cstdio>
#include <map>

#include "parley/address.h"
#include "parley/client/envelope.h"
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

// The full id of the group event EVENT names (an id or a unique prefix of one).
Result<std::string> resolve_event(Session& s, const std::string& conv, const std::string& event) {
  std::vector<std::string> found;
  for (std::uint64_t from = 0;;) {
    wire::MapWriter f;
    f.add("conv", conv).add("from", from).add("limit", std::uint64_t{500});
    PARLEY_ASSIGN_OR_RETURN(r, s.call("group_history", f));
    PARLEY_ASSIGN_OR_RETURN(events, r.root().array("events"));
    for (const auto& e : events) {
      const std::string id = e.str_or("id", "").value();
      if (id.rfind(event, 0) == 0) found.push_back(id);
    }
    // Pages end at `limit` events or at the node's answer size (client-protocol.md §12).
    if (events.empty() || !r.root().boolean_or("more", false).value()) break;
    from = r.root().uint_or("next", from + events.size()).value();
  }
  if (found.empty()) return make_error("not_found", "no event " + event + " in the group");
  if (found.size() > 1) return make_error("conflict", "several events start with " + event);
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

// The group's events in the order every member's node agrees on, with the content this device
// could decrypt, folded as ordering.md section 5 says: an edit replaces its message's text, a
// recall makes it a tombstone, reactions attach to it. Invalid events have no effect.
int history(Session& s, client::Profile& profile, const std::string& conv, bool json) {
  if (auto st = s.open_pending(); !st.ok()) return fail(st.error());
  struct Row {
    std::string id, kind, author, target, role, text, why;
    std::int64_t wall = 0;
    bool valid = true, edited = false, recalled = false;
    std::vector<std::pair<std::string, std::string>> reactions;  // user, reaction
  };
  std::vector<Row> rows;
  std::map<std::string, std::size_t> at;  // message id -> row
  for (std::uint64_t from = 0;;) {
    wire::MapWriter f;
    f.add("conv", conv).add("from", from).add("limit", std::uint64_t{500});
    auto r = s.call("group_history", f);
    if (!r.ok()) return fail(r.error());
    auto events = r->root().array("events");
    if (!events.ok()) return fail(events.error());
    for (const auto& e : *events) {
      // Content from a user this user blocks: the node keeps its place, shows nothing of it.
      if (e.boolean_or("hidden", false).value()) continue;
      Row row;
      row.id = e.str_or("id", "").value();
      row.kind = e.str_or("kind", "").value();
      if (row.kind == "message") {
        // A key handover (crypto.md section 8a) carries a chain, not a message: not shown.
        auto g = client::GroupBody::decode(e.bin("body", 1u << 24).value_or(std::string()));
        if (g.ok() && g->message.empty()) continue;
      }
      row.author = e.str_or("author", "", 320).value();
      row.target = e.str_or("target", "", 320).value();
      row.role = e.str_or("role", "").value();
      row.valid = e.boolean_or("valid", true).value();
      row.wall = e.sint("wall_ms").value_or(0);
      if (row.kind == "create") row.target.clear();  // the group's name is not for listings
      if (row.kind == "message" || row.kind == "edit" || row.kind == "reaction") {
        auto m = profile.find_by_id(conv, row.id);
        if (m.ok() && *m) {
          row.why = (*m)->e2e;
          row.text = (*m)->body;
        } else {
          row.why = "not received on this device";
        }
      }
      if (row.valid) {
        const auto t = at.find(row.target);
        if (row.kind == "edit" && t != at.end() && !rows[t->second].recalled) {
          rows[t->second].text = row.why == "ok" ? row.text : "";
          rows[t->second].why = row.why;
          rows[t->second].edited = true;
        } else if (row.kind == "recall" && t != at.end()) {
          rows[t->second].recalled = true;
          rows[t->second].edited = false;
          rows[t->second].text.clear();
        } else if (row.kind == "reaction" && t != at.end() && row.why == "ok") {
          rows[t->second].reactions.emplace_back(row.author, row.text);
        }
      }
      if (row.kind == "message") at[row.id] = rows.size();
      rows.push_back(std::move(row));
    }
    // Pages end at `limit` events or at the node's answer size (client-protocol.md §12).
    if (events->empty() || !r->root().boolean_or("more", false).value()) break;
    from = r->root().uint_or("next", from + events->size()).value();
  }
  if (json) std::printf("[");
  bool first = true;
  for (const auto& row : rows) {
    if (json) {
      std::printf(
          "%s{\"id\":%s,\"kind\":%s,\"author\":%s,\"target\":%s,\"role\":%s,\"wall_ms\":%lld,"
          "\"valid\":%s",
          first ? "" : ",", json_str(row.id).c_str(), json_str(row.kind).c_str(),
          json_str(row.author).c_str(), json_str(row.target).c_str(), json_str(row.role).c_str(),
          static_cast<long long>(row.wall), row.valid ? "true" : "false");
      if (!row.why.empty()) {
        std::printf(",\"e2e\":%s,%s", json_str(row.why).c_str(),
                    text_fields_json(row.why == "ok" ? row.text : "").c_str());
      }
      if (row.kind == "message") {
        std::printf(",\"edited\":%s,\"recalled\":%s,\"reactions\":[", row.edited ? "true" : "false",
                    row.recalled ? "true" : "false");
        for (std::size_t i = 0; i < row.reactions.size(); ++i) {
          std::printf("%s{\"user\":%s,%s}", i ? "," : "", json_str(row.reactions[i].first).c_str(),
                      text_fields_json(row.reactions[i].second).c_str());
        }
        std::printf("]");
      }
      std::printf("}");
      first = false;
      continue;
    }
    if (row.kind == "message") {
      std::string shown = row.recalled      ? "[recalled]"
                          : row.why == "ok" ? row.text
                                            : "[not decrypted: " + row.why + "]";
      if (row.edited) shown += " (edited)";
      std::printf("%s: %s", row.author.c_str(), printable(shown).c_str());
      for (const auto& [who, what] : row.reactions) {
        std::printf("  [%s %s]", printable(what).c_str(), who.c_str());
      }
      std::printf("  (%s)\n", row.id.substr(0, 12).c_str());
    } else if (row.kind != "edit" && row.kind != "recall" && row.kind != "reaction" &&
               row.kind != "read") {
      std::printf("* %s %s%s%s%s%s%s\n", row.author.c_str(), row.kind.c_str(),
                  row.target.empty() ? "" : " ", row.target.c_str(), row.role.empty() ? "" : " as ",
                  row.role.c_str(), row.valid ? "" : "  (not allowed: no effect)");
    }
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
  GroupArgs args = a;
  if (!args.event.empty()) {
    auto id = resolve_event(s, *conv, args.event);
    if (!id.ok()) return fail(id.error());
    args.event = *id;
  }
  if (a.action == "history") return history(s, profile, *conv, a.json);
  Result<wire::Message> r = make_error("bad_request", "unknown group command " + a.action);
  if (a.action == "send" || a.action == "edit" || a.action == "react") {
    // Content: end-to-end encrypted for the members' devices (crypto.md section 8a).
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
    const char* kind = a.action == "send" ? "message" : a.action == "edit" ? "edit" : "reaction";
    r = event(s, *conv, kind, args.event, "", &*body);
    if (r.ok()) {
      const std::string id = r->root().str("event_id").value();
      if (auto st = e2e.remember_sent(id, *conv, a.text, *body); !st.ok()) return fail(st.error());
      std::printf("%s %s %s\n", a.action == "send" ? "SENT" : "OK", conv->c_str(), id.c_str());
      return kOk;
    }
  } else if (a.action == "recall") {
    r = event(s, *conv, "recall", args.event, "", nullptr);
  } else if (a.action == "read") {
    std::string upto = args.event;
    if (upto.empty()) {  // everything so far: the last event in the order
      wire::MapWriter f;
      f.add("conv", *conv).add("from", std::uint64_t{0}).add("limit", std::uint64_t{1});
      auto h = s.call("group_history", f);
      if (!h.ok()) return fail(h.error());
      const auto total = h->root().uint_or("total", 0).value();
      if (total == 0) return fail(make_error("not_found", "the group has no events"));
      f = wire::MapWriter();
      f.add("conv", *conv).add("from", total - 1).add("limit", std::uint64_t{1});
      h = s.call("group_history", f);
      if (!h.ok()) return fail(h.error());
      auto last = h->root().array("events");
      if (!last.ok() || last->empty()) return fail(make_error("not_found", "no last event"));
      upto = (*last)[0].str_or("id", "").value();
    }
    r = event(s, *conv, "read", upto, "", nullptr);
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

Result<std::string> resolve_group(Session& s, const std::string& group) {
  return resolve(s, group);
}

Result<std::string> resolve_group_event(Session& s, const std::string& conv,
                                        const std::string& event) {
  return resolve_event(s, conv, event);
}

}  // namespace parley::cli
