#include "parley/node/admin_api.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cpprest/json.h>
#include <algorithm>
#include <chrono>
#include <filesystem>

#include <cpprest/http_msg.h>
#include "admin_people.h"

#include "http_server.h"
#include "parley/crypto/password.h"
#include "parley/crypto/secret.h"
#include "parley/crypto/sign.h"
#include "parley/federation/peers.h"
#include "parley/node/backup.h"
#include "parley/node/conv_store.h"
#include "parley/node/core.h"
#include "parley/node/metrics.h"
#include "parley/node/retention.h"
#include "parley/store/database.h"

namespace parley::node {

namespace http = web::http;
namespace json = web::json;

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

json::value user_json(const UserInfo& u) {
  json::value v;
  v["name"] = json::value::string(u.name);
  v["address"] = json::value::string(u.address);
  v["suspended"] = json::value::boolean(u.suspended);
  v["deactivated"] = json::value::boolean(u.deactivated);
  v["state"] = json::value::string(u.deactivated ? "deactivated"
                                   : u.suspended ? "suspended"
                                                 : "active");
  v["created_ms"] = json::value::number(static_cast<int64_t>(u.created_ms));
  v["devices"] = json::value::number(static_cast<int64_t>(u.devices));
  v["connections"] = json::value::number(static_cast<int64_t>(u.connections));
  return v;
}

// Reads a string field of a JSON body; the copy is wiped by the caller when it is a secret.
Result<std::string> field(const json::value& body, const char* name) {
  if (!body.is_object() || !body.has_field(name) || !body.at(name).is_string()) {
    return make_error("bad_request", std::string("JSON field '") + name + "' is required");
  }
  return body.at(name).as_string();
}

}  // namespace

class AdminApi::Impl {
 public:
  explicit Impl(AdminContext c) : ctx_(std::move(c)) {}

  Status start() {
    return server_.start(
        ctx_.config.admin_listen, std::nullopt,
        [this](const HttpRequest& head) -> std::optional<HttpResponse> {
          // The token before anything else: without it, no body is read.
          const std::string* auth = head.header("authorization");
          const std::string expected = "Bearer " + ctx_.token;
          if (!auth || !crypto::equal_ct(*auth, expected)) {
            spdlog::warn("event=admin_unauthorized method={}", head.method);
            return HttpResponse::error(401, "unauthorized", "missing or wrong admin token");
          }
          return std::nullopt;
        },
        [this](const HttpRequest& req) {
          AdminExchange exchange(req);
          handle(exchange);
          return exchange.take();
        });
  }

  void stop() { server_.stop(); }

 private:
  // The admin API is loopback-only and authenticated; its bounds protect the node from a broken
  // script rather than an attacker. Backups and purges may take long: two workers.
  static HttpLimits limits() {
    HttpLimits l;
    l.max_connections = 64;
    l.max_connections_per_source = 64;
    l.max_body_bytes = 1u << 20;
    l.body_timeout = std::chrono::seconds(30);
    l.idle_timeout = std::chrono::seconds(60);
    l.workers = 2;
    l.max_queued = 64;
    l.max_queued_per_source = 64;
    return l;
  }

  template <class T>
  T on_core(std::function<T(Core&)> f) {
    std::optional<T> out;
    ctx_.run_on_core([&](Core& core) { out.emplace(f(core)); });
    return std::move(*out);
  }

  void handle(const AdminExchange& req) {
    try {
      route(req);
    } catch (const std::exception& e) {
      reply_error(req,
                  make_error("bad_request", std::string("cannot process request: ") + e.what()));
    }
  }

  void route(const AdminExchange& req) {
    // Split the path as received, then decode each segment: relative_uri() decodes the whole
    // path first, so an encoded '/', '?' or '#' in a name or id would change the route.
    auto parts = http::uri::split_path(req.path());
    if (parts.size() >= 2 && parts[0] == "admin" && parts[1] == "v1") {
      parts.erase(parts.begin(), parts.begin() + 2);  // the listener's base path
    } else {
      parts.clear();
    }
    for (auto& part : parts) part = http::uri::decode(part);
    const auto& m = req.method();
    if (parts.size() == 1 && parts[0] == "status" && m == http::methods::GET) return status(req);
    if (parts.size() == 1 && parts[0] == "log-level") return log_level(req);
    if (parts.size() == 1 && parts[0] == "backup" && m == http::methods::POST) return backup(req);
    if (!parts.empty() && parts[0] == "retention") return retention(req, parts);
    if (!parts.empty() && parts[0] == "peers") return peers(req, parts);
    if (!parts.empty() && parts[0] == "convs" && parts.size() <= 2 && m == http::methods::GET) {
      return convs(req, parts);
    }
    if (route_people(req, parts, ctx_.run_on_core)) return;
    if (!parts.empty() && parts[0] == "users") {
      if (parts.size() == 1 && m == http::methods::GET) return list_users(req);
      if (parts.size() == 1 && m == http::methods::POST) return add_user(req);
      if (parts.size() == 2 && m == http::methods::DEL) {
        const std::string name = parts[1];
        return reply_status(req, on_core<Status>([&](Core& c) { return c.delete_user(name); }));
      }
      if (parts.size() == 3 && m == http::methods::POST) {
        const std::string name = parts[1];
        if (parts[2] == "suspend" || parts[2] == "unsuspend") {
          const bool on = parts[2] == "suspend";
          return reply_status(req,
                              on_core<Status>([&](Core& c) { return c.set_suspended(name, on); }));
        }
        if (parts[2] == "password") return reset_password(req, name);
      }
    }
    reply_error(req,
                make_error("not_found", "no admin route " + std::string(m) + " " + req.path()));
  }

  // GET: the current level; PUT {"level": L}: a new one, at once, until the next restart or
  // reload (config.toml's node.log_level stays as written).
  void log_level(const AdminExchange& req) {
    static const char* const kLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
    if (req.method() == http::methods::PUT) {
      const json::value body = req.json();
      auto level = field(body, "level");
      if (!level.ok()) return reply_error(req, level.error());
      const bool known = std::any_of(std::begin(kLevels), std::end(kLevels),
                                     [&](const char* l) { return *level == l; });
      if (!known) {
        return reply_error(req, make_error("bad_request",
                                           "level must be one of trace, debug, "
                                           "info, warn, error, off"));
      }
      const auto before = spdlog::level::to_string_view(spdlog::get_level());
      spdlog::set_level(spdlog::level::from_str(*level));
      spdlog::warn("event=log_level_changed from={} to={}",
                   std::string(before.data(), before.size()), *level);
    } else if (req.method() != http::methods::GET) {
      return reply_error(req, make_error("not_found", "log-level takes GET or PUT"));
    }
    const auto now = spdlog::level::to_string_view(spdlog::get_level());
    json::value out;
    out["level"] = json::value::string(std::string(now.data(), now.size()));
    req.reply(http::status_codes::OK, out);
  }

  static json::value purge_json(const PurgeCounts& c) {
    json::value v;
    v["messages"] = json::value::number(static_cast<int64_t>(c.messages));
    v["stream_entries"] = json::value::number(static_cast<int64_t>(c.stream_entries));
    v["pages_freed"] = json::value::number(static_cast<int64_t>(c.pages_freed));
    return v;
  }

  static json::value progress_json(const PurgeProgress& p) {
    json::value v = purge_json(p.counts);
    v["phase"] = json::value::string(p.phase);
    v["done"] = json::value::boolean(p.done);
    v["started_ms"] = json::value::number(static_cast<int64_t>(p.started_ms));
    v["finished_ms"] = json::value::number(static_cast<int64_t>(p.finished_ms));
    return v;
  }

  // Retention policy and purges (spec/admin-api.md, "Retention"). The Retention object lives on
  // the core thread.
  void retention(const AdminExchange& req, const std::vector<std::string>& parts) {
    const auto& m = req.method();
    Retention& r = *ctx_.retention;
    if (parts.size() == 1 && m == http::methods::GET) {
      json::value v;
      auto ok = on_core<Status>([&](Core&) -> Status {
        PARLEY_ASSIGN_OR_RETURN(p, r.policy());
        v["default_seconds"] = json::value::number(static_cast<int64_t>(p.default_seconds));
        v["default"] = json::value::string(format_lifetime(p.default_seconds));
        json::value list = json::value::array(p.overrides.size());
        for (std::size_t i = 0; i < p.overrides.size(); ++i) {
          const auto& o = p.overrides[i];
          json::value e;
          e["conv"] = json::value::string(o.conv);
          e["lifetime_seconds"] = json::value::number(static_cast<int64_t>(o.lifetime_seconds));
          e["lifetime"] = json::value::string(format_lifetime(o.lifetime_seconds));
          e["set_ms"] = json::value::number(static_cast<int64_t>(o.set_ms));
          list[i] = e;
        }
        v["overrides"] = list;
        v["running"] = json::value::boolean(r.running());
        v["last_purge"] = r.last_run() ? progress_json(*r.last_run()) : json::value::null();
        return ok_status();
      });
      if (!ok.ok()) return reply_error(req, ok.error());
      v["purge_interval_seconds"] =
          json::value::number(static_cast<int64_t>(ctx_.config.purge_interval_seconds));
      req.reply(http::status_codes::OK, v);
      return;
    }
    auto lifetime = [](const json::value& body) -> Result<std::int64_t> {
      if (!body.is_object() || !body.has_field("lifetime_seconds") ||
          !body.at("lifetime_seconds").is_integer() ||
          body.at("lifetime_seconds").as_number().to_int64() < 0) {
        return make_error("bad_request", "lifetime_seconds (an integer, 0: forever) is required");
      }
      return body.at("lifetime_seconds").as_number().to_int64();
    };
    if (parts.size() == 2 && parts[1] == "default" && m == http::methods::PUT) {
      auto seconds = lifetime(req.json());
      if (!seconds.ok()) return reply_error(req, seconds.error());
      auto s = on_core<Status>([&](Core&) { return r.set_default(*seconds, now_ms()); });
      if (s.ok()) {
        spdlog::warn("event=retention_default_set lifetime={}", format_lifetime(*seconds));
      }
      return reply_status(req, s);
    }
    if (parts.size() == 3 && parts[1] == "convs" &&
        (m == http::methods::PUT || m == http::methods::DEL)) {
      std::optional<std::int64_t> seconds;
      if (m == http::methods::PUT) {
        auto l = lifetime(req.json());
        if (!l.ok()) return reply_error(req, l.error());
        seconds = *l;
      }
      auto s = on_core<Status>([&](Core&) { return r.set_override(parts[2], seconds, now_ms()); });
      if (s.ok()) {
        spdlog::warn("event=retention_set conv={} lifetime={}", parts[2],
                     seconds ? format_lifetime(*seconds) : std::string("default"));
      }
      return reply_status(req, s);
    }
    if (parts.size() == 2 && parts[1] == "purge" && m == http::methods::POST) {
      const json::value body = req.json();
      const bool dry = body.is_object() && body.has_field("dry_run") &&
                       body.at("dry_run").is_boolean() && body.at("dry_run").as_bool();
      if (dry) {
        auto c = on_core<Result<PurgeCounts>>([&](Core&) { return r.eligible(now_ms()); });
        if (!c.ok()) return reply_error(req, c.error());
        req.reply(http::status_codes::OK, purge_json(*c));
        return;
      }
      std::int64_t limit = 1000;
      if (body.is_object() && body.has_field("limit") && body.at("limit").is_integer()) {
        limit = std::clamp<std::int64_t>(body.at("limit").as_number().to_int64(), 1, 100000);
      }
      auto p = on_core<Result<PurgeProgress>>(
          [&](Core&) { return r.step(now_ms(), static_cast<int>(limit)); });
      if (!p.ok()) return reply_error(req, p.error());
      if (p->done) {
        if (ctx_.metrics) {
          ctx_.metrics->purged_messages.fetch_add(p->counts.messages);
          ctx_.metrics->purged_stream_entries.fetch_add(p->counts.stream_entries);
        }
        spdlog::info(
            "event=retention_purged by=admin messages={} stream_entries={} "
            "pages_freed={} millis={}",
            p->counts.messages, p->counts.stream_entries, p->counts.pages_freed,
            p->finished_ms - p->started_ms);
      }
      req.reply(http::status_codes::OK, progress_json(*p));
      return;
    }
    reply_error(req, make_error("not_found", "no admin route for that retention request"));
  }

  void reply_status(const AdminExchange& req, const Status& s) {
    if (!s.ok()) return reply_error(req, s.error());
    json::value ok;
    ok["ok"] = json::value::boolean(true);
    req.reply(http::status_codes::OK, ok);
  }

  // `allowlist`: federation.policy = "allowlist", under which an unlisted peer's queue is held.
  static json::value peer_json(const federation::Peer& p, bool allowlist) {
    json::value v;
    v["name"] = json::value::string(p.name);
    v["url"] = json::value::string(p.url);
    v["discovered"] = json::value::boolean(p.discovered_ms != 0);
    v["key"] =
        json::value::string(p.public_key.empty() ? "" : crypto::format_public_key(p.public_key));
    v["state"] = json::value::string(p.state);
    v["queued"] = json::value::number(static_cast<int64_t>(p.queued));
    v["oldest_queued_ms"] = json::value::number(static_cast<int64_t>(p.oldest_queued_ms));
    v["last_success_ms"] = json::value::number(static_cast<int64_t>(p.last_success_ms));
    v["last_error"] = json::value::string(p.last_error);
    v["failures"] = json::value::number(static_cast<int64_t>(p.failures));
    v["next_attempt_ms"] = json::value::number(static_cast<int64_t>(p.next_attempt_ms));
    v["listed"] = json::value::boolean(p.listed);
    // Denied peers, and under the allowlist unlisted ones, get nothing from this node: their
    // queued events wait (spec/federation.md §3).
    const char* held = p.state == "denied" ? "denied" : allowlist && !p.listed ? "not_listed" : "";
    v["outbound_held"] = json::value::boolean(*held != '\0');
    v["held_reason"] = json::value::string(held);
    return v;
  }

  void peers(const AdminExchange& req, const std::vector<std::string>& parts) {
    const auto& m = req.method();
    if (parts.size() == 1 && m == http::methods::GET) {
      bool allowlist = false;
      auto list = on_core<Result<std::vector<federation::Peer>>>([&](Core& c) {
        allowlist = c.config().federation_policy == "allowlist";
        return federation::PeerStore(c.database()).list();
      });
      if (!list.ok()) return reply_error(req, list.error());
      json::value arr = json::value::array(list->size());
      for (std::size_t i = 0; i < list->size(); ++i) arr[i] = peer_json((*list)[i], allowlist);
      req.reply(http::status_codes::OK, arr);
      return;
    }
    if (parts.size() == 1 && m == http::methods::POST) {
      const json::value body = req.json();
      auto name = field(body, "name");
      auto url = field(body, "url");
      if (!name.ok()) return reply_error(req, name.error());
      if (!url.ok()) return reply_error(req, url.error());
      std::string raw_key;
      if (body.has_field("key") && body.at("key").is_string() &&
          !body.at("key").as_string().empty()) {
        auto k = crypto::parse_public_key(body.at("key").as_string());
        if (!k.ok()) return reply_error(req, make_error("bad_request", k.error().message));
        raw_key = *k;
      }
      if (url->rfind("http://", 0) == 0 && !ctx_.config.federation_allow_plaintext) {
        return reply_error(req, make_error("bad_request",
                                           "plain http:// peers need federation."
                                           "allow_plaintext_http = true (loopback tests only)"));
      }
      auto s = on_core<Status>([&](Core& c) {
        return federation::PeerStore(c.database()).add(*name, *url, raw_key, now_ms());
      });
      if (s.ok()) spdlog::info("event=peer_added peer={} url={}", *name, *url);
      return reply_status(req, s);
    }
    if (parts.size() == 2 && m == http::methods::GET) {
      bool allowlist = false;
      auto p = on_core<Result<std::optional<federation::Peer>>>([&](Core& c) {
        allowlist = c.config().federation_policy == "allowlist";
        return federation::PeerStore(c.database()).get(parts[1]);
      });
      if (!p.ok()) return reply_error(req, p.error());
      if (!*p) return reply_error(req, make_error("not_found", "no peer " + parts[1]));
      req.reply(http::status_codes::OK, peer_json(**p, allowlist));
      return;
    }
    if (parts.size() == 2 && m == http::methods::DEL) {
      return reply_status(req, on_core<Status>([&](Core& c) {
                            return federation::PeerStore(c.database()).remove(parts[1]);
                          }));
    }
    if (parts.size() == 3 && m == http::methods::POST &&
        (parts[2] == "deny" || parts[2] == "allow")) {
      const std::string state = parts[2] == "deny" ? "denied" : "allowed";
      auto s = on_core<Status>([&](Core& c) {
        return federation::PeerStore(c.database()).set_state(parts[1], state, now_ms());
      });
      if (s.ok()) spdlog::warn("event=peer_{} peer={}", parts[2], parts[1]);
      return reply_status(req, s);
    }
    reply_error(req, make_error("not_found", "no admin route for that peer request"));
  }

  // Replicated conversations: what an admin may see (members, nodes, clock, counts), never a
  // name or content.
  static json::value conv_json(const ConvSummary& s) {
    json::value v;
    v["conv"] = json::value::string(s.conv);
    v["events"] = json::value::number(static_cast<int64_t>(s.events));
    v["buffered"] = json::value::number(static_cast<int64_t>(s.buffered));
    v["equivocations"] = json::value::number(static_cast<int64_t>(s.equivocations));
    json::value members = json::value::array(s.members.size());
    std::size_t i = 0;
    for (const auto& [user, role] : s.members) {
      json::value m;
      m["user"] = json::value::string(user);
      m["role"] = json::value::string(role);
      members[i++] = m;
    }
    v["members"] = members;
    json::value nodes = json::value::array(s.nodes.size());
    for (i = 0; i < s.nodes.size(); ++i) nodes[i] = json::value::string(s.nodes[i]);
    v["nodes"] = nodes;
    json::value clock = json::value::object();
    for (const auto& [actor, seq] : s.clock) {
      clock[actor] = json::value::number(static_cast<int64_t>(seq));
    }
    v["clock"] = clock;
    return v;
  }

  void convs(const AdminExchange& req, const std::vector<std::string>& parts) {
    if (parts.size() == 2) {
      auto one = on_core<Result<std::optional<ConvSummary>>>(
          [&](Core& c) { return c.conv_summary(parts[1]); });
      if (!one.ok()) return reply_error(req, one.error());
      if (!*one) return reply_error(req, make_error("not_found", "no conversation " + parts[1]));
      req.reply(http::status_codes::OK, conv_json(**one));
      return;
    }
    auto list = on_core<Result<std::vector<ConvSummary>>>([](Core& c) { return c.conv_list(); });
    if (!list.ok()) return reply_error(req, list.error());
    json::value arr = json::value::array(list->size());
    for (std::size_t i = 0; i < list->size(); ++i) arr[i] = conv_json((*list)[i]);
    req.reply(http::status_codes::OK, arr);
  }

  void status(const AdminExchange& req) {
    auto stats = on_core<Result<CoreStats>>([](Core& c) { return c.stats(); });
    if (!stats.ok()) return reply_error(req, stats.error());
    auto epoch = on_core<Result<std::uint64_t>>([](Core& c) { return c.node_epoch(); });
    if (!epoch.ok()) return reply_error(req, epoch.error());
    std::int64_t db_bytes = 0;
    if (auto db = store::Database::open(ctx_.database_path); db.ok())
      db_bytes = (*db)->size_bytes();
    json::value v;
    v["name"] = json::value::string(ctx_.config.name);
    v["version"] = json::value::string(PARLEY_VERSION);
    v["pid"] = json::value::number(static_cast<int64_t>(getpid()));
    v["uptime_seconds"] =
        json::value::number(static_cast<int64_t>((now_ms() - ctx_.started_ms) / 1000));
    v["client_listen"] = json::value::string(ctx_.config.client_listen.str());
    v["users"] = json::value::number(static_cast<int64_t>(stats->users));
    v["devices"] = json::value::number(static_cast<int64_t>(stats->devices));
    v["messages"] = json::value::number(static_cast<int64_t>(stats->messages));
    v["connections"] = json::value::number(static_cast<int64_t>(stats->connections));
    v["authenticated_connections"] =
        json::value::number(static_cast<int64_t>(stats->authenticated));
    v["outbound_queued_frames"] = json::value::number(static_cast<int64_t>(ctx_.queued_frames()));
    v["undelivered_events"] = json::value::number(static_cast<int64_t>(stats->undelivered_events));
    v["federation_queued"] = json::value::number(static_cast<int64_t>(stats->federation_queued));
    v["federation_oldest_queued_seconds"] = json::value::number(static_cast<int64_t>(
        stats->federation_oldest_queued_ms ? (now_ms() - stats->federation_oldest_queued_ms) / 1000
                                           : 0));
    v["federation_peers"] = json::value::number(static_cast<int64_t>(stats->federation_peers));
    v["federation_peers_failing"] =
        json::value::number(static_cast<int64_t>(stats->federation_peers_failing));
    v["database_bytes"] = json::value::number(static_cast<int64_t>(db_bytes));
    v["epoch"] = json::value::number(static_cast<uint64_t>(*epoch));
    req.reply(http::status_codes::OK, v);
  }

  void list_users(const AdminExchange& req) {
    auto users = on_core<Result<std::vector<UserInfo>>>([](Core& c) { return c.list_users(); });
    if (!users.ok()) return reply_error(req, users.error());
    json::value arr = json::value::array(users->size());
    for (std::size_t i = 0; i < users->size(); ++i) arr[i] = user_json((*users)[i]);
    req.reply(http::status_codes::OK, arr);
  }

  void add_user(const AdminExchange& req) {
    const json::value body = req.json();
    auto name = field(body, "name");
    if (!name.ok()) return reply_error(req, name.error());
    auto hash = hashed_password_from(body);
    if (!hash.ok()) return reply_error(req, hash.error());
    std::string display_name;
    if (body.has_field("display_name") && body.at("display_name").is_string()) {
      display_name = body.at("display_name").as_string();
    }
    auto user =
        on_core<Result<UserInfo>>([&](Core& c) { return c.add_user(*name, *hash, display_name); });
    if (!user.ok()) return reply_error(req, user.error());
    spdlog::info("event=user_added user={}", user->address);
    req.reply(http::status_codes::Created, user_json(*user));
  }

  Result<std::string> hashed_password_from(const json::value& body) {
    PARLEY_ASSIGN_OR_RETURN(password, field(body, "password"));
    crypto::SecretBytes secret(password);
    crypto::SecretBytes(std::move(password)).wipe();
    if (secret.size() < 8) return make_error("bad_request", "passwords need at least 8 characters");
    if (secret.size() > 1024) return make_error("bad_request", "password too long");
    return crypto::hash_password(secret.view(), ctx_.config.password_strength);
  }

  void reset_password(const AdminExchange& req, const std::string& name) {
    const json::value body = req.json();
    auto hash = hashed_password_from(body);
    if (!hash.ok()) return reply_error(req, hash.error());
    auto s = on_core<Status>([&](Core& c) { return c.set_password_hash(name, *hash); });
    if (s.ok()) spdlog::info("event=password_reset user={}", name);
    reply_status(req, s);
  }

  // A backup directory (backup.h): snapshot, node key, config, manifest.
  void backup(const AdminExchange& req) {
    const json::value body = req.json();
    auto dir = field(body, "dir");
    if (!dir.ok()) return reply_error(req, dir.error());
    if (dir->empty() || dir->front() != '/') {
      return reply_error(req, make_error("bad_request", "dir must be an absolute path"));
    }
    const auto started = now_ms();
    auto m = create_backup(ctx_.data_dir, *dir, PARLEY_VERSION, started);
    if (!m.ok()) return reply_error(req, m.error());
    json::value v;
    v["dir"] = json::value::string(*dir);
    v["node"] = json::value::string(m->node);
    v["created_ms"] = json::value::number(static_cast<int64_t>(m->created_ms));
    v["schema_version"] = json::value::number(m->schema_version);
    v["epoch"] = json::value::number(static_cast<uint64_t>(m->epoch));
    std::int64_t bytes = 0;
    for (const auto& f : m->files) bytes += f.bytes;
    v["bytes"] = json::value::number(static_cast<int64_t>(bytes));
    v["millis"] = json::value::number(static_cast<int64_t>(now_ms() - started));
    spdlog::info("event=backup dir=\"{}\" bytes={}", *dir, bytes);
    req.reply(http::status_codes::OK, v);
  }

  AdminContext ctx_;
  HttpServer server_{"admin", limits()};
};

AdminApi::AdminApi(AdminContext context) : impl_(std::make_unique<Impl>(std::move(context))) {}
AdminApi::~AdminApi() { impl_->stop(); }
Status AdminApi::start() { return impl_->start(); }
void AdminApi::stop() { impl_->stop(); }

}  // namespace parley::node
