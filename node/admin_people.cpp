// spdlog (fmt) before cpprestsdk, whose U() macro breaks fmt's headers.
#include <spdlog/spdlog.h>

#include <optional>

#include "admin_people.h"

#include <cpprest/http_msg.h>

#include "parley/node/core.h"
#include "parley/utf8.h"

namespace parley::node {

namespace http = web::http;
namespace json = web::json;

namespace {

json::value num(std::int64_t n) { return json::value::number(static_cast<int64_t>(n)); }

// Text users wrote, as JSON. Rows stored before the client port checked UTF-8 may hold other
// bytes, which would make the whole answer unreadable JSON: they are shown as U+FFFD instead.
json::value text(const std::string& s) { return json::value::string(wire::repair_utf8(s)); }

template <class T>
T on_core(const RunOnCore& run, std::function<T(Core&)> f) {
  std::optional<T> out;
  run([&](Core& core) { out.emplace(f(core)); });
  return std::move(*out);
}

void reply_ok(const AdminExchange& req, const Status& s) {
  if (!s.ok()) return reply_error(req, s.error());
  json::value ok;
  ok["ok"] = json::value::boolean(true);
  req.reply(http::status_codes::OK, ok);
}

// A JSON body; an empty one is an empty object.
json::value body_of(const AdminExchange& req) {
  json::value v = req.json();
  return v.is_null() ? json::value::object() : v;
}

bool query_flag(const AdminExchange& req, const char* name) {
  const auto q = http::uri::split_query(req.query());
  const auto it = q.find(name);
  return it != q.end() && (it->second == "true" || it->second == "1");
}

json::value session_json(const SessionInfo& s) {
  json::value v;
  v["device"] = num(s.device);
  v["label"] = text(s.label);
  v["created_ms"] = num(s.created_ms);
  v["last_seen_ms"] = num(s.last_seen_ms);
  v["last_address"] = text(s.last_address);
  v["signed_in"] = json::value::boolean(s.signed_in);
  v["connected"] = json::value::boolean(!s.connections.empty());
  json::value conns = json::value::array(s.connections.size());
  for (std::size_t i = 0; i < s.connections.size(); ++i) {
    conns[i] = text(s.connections[i]);
  }
  v["connections"] = conns;
  return v;
}

json::value limit_json(const SendLimit& l) {
  json::value v;
  v["messages_per_minute"] = num(l.messages_per_minute);
  v["burst"] = num(l.burst);
  v["override"] = json::value::boolean(l.override);
  return v;
}

json::value report_json(const ReportInfo& r, bool with_text) {
  json::value v;
  v["id"] = num(r.id);
  v["state"] = text(r.resolved_ms ? "resolved" : "open");
  v["reporter"] = text(r.reporter);
  v["reporter_device"] = num(r.reporter_device);
  v["conv"] = text(r.conv);
  v["cseq"] = num(r.cseq);
  v["msg_id"] = text(r.msg_id);
  v["sender"] = text(r.sender);
  v["sent_ms"] = num(r.sent_ms);
  v["reason"] = text(r.reason);
  v["has_text"] = json::value::boolean(r.text.has_value());
  if (with_text) v["text"] = r.text ? text(*r.text) : json::value::null();
  v["created_ms"] = num(r.created_ms);
  v["resolved_ms"] = num(r.resolved_ms);
  v["note"] = text(r.note);
  return v;
}

Result<std::int64_t> report_id(const std::string& text) {
  if (text.empty() || text.size() > 18 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return make_error("not_found", "no report " + text);
  }
  return static_cast<std::int64_t>(std::stoll(text));
}

// /users/{name}/sessions | kick | deactivate | reactivate | erase | limit
bool user_routes(const AdminExchange& req, const std::vector<std::string>& parts,
                 const RunOnCore& run) {
  const auto& m = req.method();
  const std::string name = parts[1];
  const std::string& what = parts[2];
  if (what == "sessions" && m == http::methods::GET) {
    const bool all = query_flag(req, "all");
    auto list = on_core<Result<std::vector<SessionInfo>>>(
        run, [&](Core& c) { return c.list_sessions(name, all); });
    if (!list.ok()) return reply_error(req, list.error()), true;
    json::value arr = json::value::array(list->size());
    for (std::size_t i = 0; i < list->size(); ++i) arr[i] = session_json((*list)[i]);
    req.reply(http::status_codes::OK, arr);
    return true;
  }
  if (what == "kick" && m == http::methods::POST) {
    const json::value body = body_of(req);
    std::optional<std::int64_t> device;
    if (body.has_field("device")) {
      if (!body.at("device").is_integer()) {
        return reply_error(req, make_error("bad_request", "'device' must be a device id")), true;
      }
      device = body.at("device").as_number().to_int64();
    }
    auto r = on_core<Result<std::pair<std::int64_t, std::int64_t>>>(
        run, [&](Core& c) { return c.kick(name, device); });
    if (!r.ok()) return reply_error(req, r.error()), true;
    spdlog::warn("event=user_kicked user={} device={} signed_out={} closed={}", name,
                 device ? std::to_string(*device) : std::string("all"), r->first, r->second);
    json::value v;
    v["devices_signed_out"] = num(r->first);
    v["connections_closed"] = num(r->second);
    req.reply(http::status_codes::OK, v);
    return true;
  }
  if ((what == "deactivate" || what == "reactivate") && m == http::methods::POST) {
    const bool on = what == "deactivate";
    auto s = on_core<Status>(run, [&](Core& c) { return c.set_deactivated(name, on); });
    if (s.ok()) spdlog::warn("event=user_{}d user={}", what, name);
    reply_ok(req, s);
    return true;
  }
  if (what == "erase" && m == http::methods::POST) {
    auto s = on_core<Status>(run, [&](Core& c) { return c.erase_user(name); });
    if (s.ok()) spdlog::warn("event=user_erased user={}", name);
    reply_ok(req, s);
    return true;
  }
  if (what == "limit" && (m == http::methods::GET || m == http::methods::PUT)) {
    if (m == http::methods::PUT) {
      const json::value body = body_of(req);
      std::optional<SendLimit> limit;
      const bool to_default = body.has_field("default") && body.at("default").is_boolean() &&
                              body.at("default").as_bool();
      if (!to_default) {
        const auto uint_field = [&](const char* f, std::int64_t max) -> Result<std::int64_t> {
          if (!body.has_field(f)) return std::int64_t{0};
          const auto& v = body.at(f);
          if (!v.is_integer() || v.as_number().to_int64() < 0 || v.as_number().to_int64() > max) {
            return make_error(
                "bad_request",
                std::string("'") + f + "' must be an integer from 0 to " + std::to_string(max));
          }
          return v.as_number().to_int64();
        };
        if (!body.has_field("messages_per_minute")) {
          return reply_error(req, make_error("bad_request",
                                             "give 'messages_per_minute' (0: unlimited) or "
                                             "'default': true")),
                 true;
        }
        auto rate = uint_field("messages_per_minute", 1 << 20);
        auto burst = uint_field("burst", 1 << 20);
        if (!rate.ok()) return reply_error(req, rate.error()), true;
        if (!burst.ok()) return reply_error(req, burst.error()), true;
        limit =
            SendLimit{static_cast<std::uint32_t>(*rate), static_cast<std::uint32_t>(*burst), true};
      }
      auto s = on_core<Status>(run, [&](Core& c) { return c.set_send_limit(name, limit); });
      if (!s.ok()) return reply_error(req, s.error()), true;
      spdlog::info("event=user_limit_set user={} messages_per_minute={}", name,
                   limit ? std::to_string(limit->messages_per_minute) : std::string("default"));
    }
    auto l = on_core<Result<SendLimit>>(run, [&](Core& c) { return c.send_limit(name); });
    if (!l.ok()) return reply_error(req, l.error()), true;
    req.reply(http::status_codes::OK, limit_json(*l));
    return true;
  }
  return false;
}

bool report_routes(const AdminExchange& req, const std::vector<std::string>& parts,
                   const RunOnCore& run) {
  const auto& m = req.method();
  if (parts.size() == 1 && m == http::methods::GET) {
    const bool open = query_flag(req, "open");
    auto list = on_core<Result<std::vector<ReportInfo>>>(
        run, [&](Core& c) { return c.list_reports(open); });
    if (!list.ok()) return reply_error(req, list.error()), true;
    json::value arr = json::value::array(list->size());
    for (std::size_t i = 0; i < list->size(); ++i) arr[i] = report_json((*list)[i], false);
    req.reply(http::status_codes::OK, arr);
    return true;
  }
  if (parts.size() < 2) return false;
  auto id = report_id(parts[1]);
  if (parts.size() == 2 && m == http::methods::GET) {
    if (!id.ok()) return reply_error(req, id.error()), true;
    auto r =
        on_core<Result<std::optional<ReportInfo>>>(run, [&](Core& c) { return c.report(*id); });
    if (!r.ok()) return reply_error(req, r.error()), true;
    if (!*r) return reply_error(req, make_error("not_found", "no report " + parts[1])), true;
    req.reply(http::status_codes::OK, report_json(**r, true));
    return true;
  }
  if (parts.size() == 3 && parts[2] == "resolve" && m == http::methods::POST) {
    if (!id.ok()) return reply_error(req, id.error()), true;
    const json::value body = body_of(req);
    std::string note;
    if (body.has_field("note")) {
      if (!body.at("note").is_string()) {
        return reply_error(req, make_error("bad_request", "'note' must be a string")), true;
      }
      note = body.at("note").as_string();
    }
    auto r = on_core<Result<ReportInfo>>(run, [&](Core& c) { return c.resolve_report(*id, note); });
    if (!r.ok()) return reply_error(req, r.error()), true;
    req.reply(http::status_codes::OK, report_json(*r, true));
    return true;
  }
  return false;
}

}  // namespace

bool route_people(const AdminExchange& req, const std::vector<std::string>& parts,
                  const RunOnCore& run) {
  if (parts.empty()) return false;
  if (parts[0] == "users" && parts.size() == 3) return user_routes(req, parts, run);
  if (parts[0] == "reports") return report_routes(req, parts, run);
  if (parts[0] == "retired-names") {
    const auto& m = req.method();
    if (parts.size() == 1 && m == http::methods::GET) {
      auto list = on_core<Result<std::vector<std::pair<std::string, std::int64_t>>>>(
          run, [](Core& c) { return c.retired_names(); });
      if (!list.ok()) return reply_error(req, list.error()), true;
      json::value arr = json::value::array(list->size());
      for (std::size_t i = 0; i < list->size(); ++i) {
        json::value v;
        v["name"] = json::value::string((*list)[i].first);
        v["retired_ms"] = num((*list)[i].second);
        arr[i] = v;
      }
      req.reply(http::status_codes::OK, arr);
      return true;
    }
    if (parts.size() == 2 && m == http::methods::DEL) {
      const std::string name = parts[1];
      auto s = on_core<Status>(run, [&](Core& c) { return c.unretire_name(name); });
      if (s.ok()) spdlog::warn("event=name_unretired name={}", name);
      reply_ok(req, s);
      return true;
    }
  }
  return false;
}

}  // namespace parley::node
