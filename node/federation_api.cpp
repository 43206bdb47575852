#include "parley/node/federation_api.h"

#include <atomic>

#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>

#include <cpprest/json.h>
#include "federation_client.h"

#include "http_server.h"
#include "key_documents.h"
#include "parley/address.h"
#include "parley/crypto/sign.h"
#include "parley/federation/key_document.h"
#include "parley/federation/peers.h"
#include "parley/federation/query.h"
#include "parley/federation/signing.h"
#include "parley/federation/transaction.h"
#include "parley/message.h"
#include "parley/node/core.h"
#include "parley/node/rate_limiter.h"

namespace parley::node {

namespace {

constexpr std::size_t kMaxBody = federation::kMaxTransactionBytes;
constexpr std::int64_t kWindowMs = 300'000;  // accepted clock skew of a signed request
// The Retry-After when key document fetches are busy (key_documents.h).
constexpr std::int64_t kKeyBusyRetryMs = 2'000;
// Request work runs on the federation listener's own workers (they wait for the core thread,
// and for key documents).
constexpr std::size_t kWorkers = 8;
// Refused (unauthenticated) requests allowed per source address and window before 429.
constexpr std::uint32_t kRefusalsPerWindow = 200;
constexpr std::int64_t kRefusalWindowMs = 10'000;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int status_for(const std::string& code) {
  if (code == "denied" || code == "forbidden") return 403;
  if (code == "wrong_destination") return 421;
  if (code == "replayed" || code == "stale_epoch") return 409;
  if (code == "payload_too_large") return 413;
  if (code == "too_many_requests" || code == "rate_limited") return 429;
  if (code == "not_found") return 404;
  if (code == "malformed_signature" || code == "bad_request") return 400;
  if (code == "stale_timestamp" || code == "unknown_key" || code == "bad_signature") return 401;
  if (code == "unavailable") return 503;
  return 500;
}

// Per-origin admission: a fixed one-second window of requests and a count of requests in flight.
class Admission {
 public:
  Admission(std::uint32_t per_second, std::uint32_t concurrent)
      : rate_(per_second, 1000), concurrent_(concurrent) {}

  // Milliseconds to wait before retrying, or 0 when admitted (then release() must follow).
  std::int64_t admit(const std::string& origin, std::int64_t now) {
    std::lock_guard<std::mutex> lock(mu_);
    if (const auto wait = rate_.blocked_for(origin, now); wait > 0) return wait;
    auto& n = in_flight_[origin];
    if (n >= concurrent_) return 1000;
    ++n;
    rate_.record_failure(origin, now);  // counts requests, not only failures
    return 0;
  }
  void set_limits(std::uint32_t per_second, std::uint32_t concurrent) {
    std::lock_guard<std::mutex> lock(mu_);
    rate_.set_limits(per_second, 1000);
    concurrent_ = concurrent;
  }
  void release(const std::string& origin) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = in_flight_.find(origin);
    if (it != in_flight_.end() && --it->second == 0) in_flight_.erase(it);
  }

 private:
  std::mutex mu_;
  RateLimiter rate_;
  std::uint32_t concurrent_;
  std::map<std::string, std::uint32_t> in_flight_;
};

}  // namespace

class FederationApi::Impl {
 public:
  explicit Impl(FederationContext c)
      : ctx_(std::move(c)),
        server_("federation", limits_for(ctx_.config)),
        admission_(ctx_.config.federation_requests_per_second,
                   ctx_.config.federation_concurrent_per_origin),
        allowlist_only_(ctx_.config.federation_policy == "allowlist") {}

  void reload(const NodeConfig& fresh) {
    admission_.set_limits(fresh.federation_requests_per_second,
                          fresh.federation_concurrent_per_origin);
    allowlist_only_.store(fresh.federation_policy == "allowlist");
  }

  Status start() {
    std::optional<HttpTls> tls;
    if (!ctx_.config.federation_tls_cert.empty()) {
      tls = HttpTls{ctx_.config.federation_tls_cert, ctx_.config.federation_tls_key};
    }
    return server_.start(
        ctx_.config.federation_listen, tls,
        [this](const HttpRequest& head) { return on_head(head); },
        [this](const HttpRequest& req) { return on_request(req); });
  }

  void stop() { server_.stop(); }
  HttpServer::Stats stats() const { return server_.stats(); }

 private:
  static HttpLimits limits_for(const NodeConfig& c) {
    HttpLimits l;
    l.max_connections = c.federation_max_connections;
    l.max_connections_per_source = c.federation_max_connections_per_source;
    l.max_body_bytes = kMaxBody;
    l.body_budget_bytes = 128u << 20;
    l.body_budget_per_source = 16u << 20;
    l.header_timeout = std::chrono::seconds(10);
    l.body_timeout = std::chrono::seconds(c.federation_request_timeout_seconds);
    l.idle_timeout = std::chrono::seconds(c.federation_idle_timeout_seconds);
    l.workers = kWorkers;
    l.max_queued = 256;
    l.max_queued_per_source = 32;
    return l;
  }

  // An error answer; refusals of unauthenticated requests count against the source address.
  HttpResponse refuse(const std::string& source, const Error& e, std::int64_t retry_after_ms = 0) {
    spdlog::info("event=federation_refused code={} reason=\"{}\" source={}", e.code, e.message,
                 source);
    const int status = status_for(e.code);
    if (status >= 400 && status < 500 && status != 429 && status != 404) {
      std::lock_guard<std::mutex> lock(refusals_mu_);
      refusals_.record_failure(source, now_ms());
    }
    auto r = HttpResponse::error(status, e.code, e.message);
    if (retry_after_ms > 0) {
      r.headers.emplace_back("Retry-After", std::to_string((retry_after_ms + 999) / 1000));
    }
    return r;
  }

  static bool is_signed_route(const HttpRequest& r) {
    return (r.method == "PUT" && r.path().rfind("/federation/v1/send/", 0) == 0) ||
           (r.method == "POST" && r.path().rfind("/federation/v1/query/", 0) == 0);
  }

  // The I/O thread, before the body: unsigned routes are answered here; a signed route's
  // Authorization header must be well formed, addressed to us and fresh, else the body is never
  // read.
  std::optional<HttpResponse> on_head(const HttpRequest& req) {
    {
      std::lock_guard<std::mutex> lock(refusals_mu_);
      if (const auto wait = refusals_.blocked_for(req.source, now_ms()); wait > 0) {
        auto r =
            HttpResponse::error(429, "too_many_requests",
                                "too many refused requests from " + req.source + "; slow down");
        r.headers.emplace_back("Retry-After", std::to_string((wait + 999) / 1000));
        return r;
      }
    }
    if (req.method == "GET" && req.path() == "/federation/v1/key") {
      HttpResponse r;
      r.content_type = "application/msgpack";
      r.body = ctx_.key_document;
      return r;
    }
    if (req.method == "GET" && req.path() == "/.well-known/parley") {
      web::json::value v;
      v["federation_url"] = web::json::value::string(federation_public_url(ctx_.config));
      return HttpResponse::json(200, v.serialize());
    }
    if (!is_signed_route(req)) {
      return refuse(req.source, make_error("not_found", "no federation route " + req.method + " " +
                                                            std::string(req.path())));
    }
    auto sig = check_header(req);
    if (!sig.ok()) return refuse(req.source, sig.error());
    return std::nullopt;
  }

  // What can be checked of the Authorization header without the body.
  Result<federation::RequestSignature> check_header(const HttpRequest& req) {
    const std::string* auth = req.header("authorization");
    if (!auth) return make_error("malformed_signature", "no Authorization header");
    PARLEY_ASSIGN_OR_RETURN(sig, federation::parse_authorization(*auth));
    if (!wire::validate_domain(sig.origin).ok()) {
      return make_error("malformed_signature", "Authorization: origin is not a node name");
    }
    if (sig.destination != ctx_.config.name) {
      return make_error("wrong_destination",
                        "request is addressed to " + sig.destination + ", not " + ctx_.config.name);
    }
    const std::int64_t now = now_ms();
    if (sig.ts_ms < now - kWindowMs || sig.ts_ms > now + kWindowMs) {
      return make_error("stale_timestamp", "request timestamp is outside the accepted window");
    }
    return sig;
  }

  // A worker thread, with the whole body.
  HttpResponse on_request(const HttpRequest& req) {
    if (req.method == "PUT") {
      return signed_call(
          req, [this](const std::string& origin, const std::string& body) -> Result<Answer> {
            PARLEY_ASSIGN_OR_RETURN(applied, receive(origin, body));
            Answer a;
            a.json["applied_upto"] = web::json::value::number(static_cast<int64_t>(applied));
            return a;
          });
    }
    const std::string kind(req.path().substr(std::string_view("/federation/v1/query/").size()));
    return signed_call(req, [this, kind](const std::string& origin, const std::string& body) {
      return query(kind, origin, body);
    });
  }

  // A handler's answer: JSON, or msgpack bytes.
  struct Answer {
    web::json::value json;
    std::string msgpack;
  };
  using SignedHandler =
      std::function<Result<Answer>(const std::string& origin, const std::string& body)>;

  // Authenticates a signed request, admits it for its origin and runs `handler`.
  HttpResponse signed_call(const HttpRequest& req, const SignedHandler& handler) {
    auto origin = authenticate(req);
    if (!origin.ok()) {
      return refuse(req.source, origin.error(),
                    origin.error().code == "unavailable" ? kKeyBusyRetryMs : 0);
    }
    const std::string& name = *origin;
    if (const auto wait = admission_.admit(name, now_ms()); wait > 0) {
      spdlog::warn("event=federation_throttled peer={} retry_after_ms={}", name, wait);
      return refuse(req.source, make_error("too_many_requests", name + " is over its request rate"),
                    wait);
    }
    Result<Answer> r = make_error("internal", "unset");
    try {
      r = handler(name, req.body);
    } catch (...) {
      admission_.release(name);
      throw;
    }
    admission_.release(name);
    if (!r.ok()) {
      return refuse(req.source, r.error(), r.error().code == "rate_limited" ? 60'000 : 0);
    }
    if (r->msgpack.empty()) return HttpResponse::json(200, r->json.serialize());
    HttpResponse resp;
    resp.content_type = "application/msgpack";
    resp.body = std::move(r->msgpack);
    return resp;
  }

  // Verifies the signature (spec/federation.md §2); returns the origin.
  Result<std::string> authenticate(const HttpRequest& req) {
    const std::string* auth = req.header("authorization");
    if (!auth) return make_error("malformed_signature", "no Authorization header");
    // Denial and the allowlist are local facts: refused before the signature is checked.
    PARLEY_ASSIGN_OR_RETURN(claimed, federation::parse_authorization(*auth));
    std::optional<federation::Peer> peer;
    Status looked = ok_status();
    ctx_.run_on_core([&](Core& core) {
      auto p = federation::PeerStore(core.database()).get(claimed.origin);
      if (!p.ok()) {
        looked = p.take_error();
        return;
      }
      peer = *p;
    });
    PARLEY_TRY(looked);
    if (peer && peer->state == "denied") {
      return make_error("denied", claimed.origin + " is denied");
    }
    if (!(peer && peer->listed) && allowlist_only_.load()) {
      return make_error("denied", claimed.origin + " is not on this node's allowlist");
    }
    federation::VerifyOptions opts{ctx_.config.name, now_ms(), kWindowMs};
    federation::KeyCheck keys = [this, &peer](const std::string& origin, const std::string& key,
                                              std::int64_t ts) {
      return check_key(origin, peer, key, ts);
    };
    PARLEY_ASSIGN_OR_RETURN(sig, federation::verify_request(*auth, req.method, req.target, req.body,
                                                            opts, keys, replay_));
    ctx_.heard_from_peer(sig.origin);  // the peer is up: stop backing off towards it
    return sig.origin;
  }

  // The key document of `origin` (key_documents.h: cached for a minute, single-flight, bounded;
  // shared with the core, which checks relayed group events with it).
  Result<federation::KeyDocument> key_document(const std::string& origin) {
    return ctx_.keys->get(origin);
  }

  void pin(const std::string& origin, const std::string& key) {
    ctx_.run_on_core(
        [&](Core& core) { (void)federation::PeerStore(core.database()).pin_key(origin, key); });
  }

  // Whether `public_key` may sign for `origin` at `ts`: the pinned key; a key of a document that
  // continues the pinned key through endorsements (a rotation, re-pinned to its current key); or,
  // with no pinned key and the open policy, the key document fetched on first contact.
  // `peer` is the origin's entry (checked not to be denied).
  Status check_key(const std::string& origin, const std::optional<federation::Peer>& peer,
                   const std::string& public_key, std::int64_t ts) {
    if (peer && peer->public_key == public_key) return ok_status();
    if (!peer || peer->public_key.empty()) {
      PARLEY_ASSIGN_OR_RETURN(doc, key_document(origin));
      PARLEY_TRY(doc.valid_at(public_key, ts));
      pin(origin, doc.current()->public_key);
      spdlog::warn("event=peer_key_pinned peer={} key={} note=\"trust on first use\"", origin,
                   crypto::format_public_key(doc.current()->public_key));
      return ok_status();
    }
    // A key other than the pinned one: acceptable only through the peer's own rotation chain.
    auto doc = key_document(origin);
    if (!doc.ok() && doc.error().code == "unavailable") return doc.error();
    Status chain = doc.ok() ? doc->continues_from(peer->public_key) : doc.error();
    if (chain.ok()) chain = doc->valid_at(public_key, ts);
    if (!chain.ok()) {
      spdlog::error(
          "event=peer_key_mismatch peer={} presented={} pinned={} reason=\"{}\" note=\"refused "
          "until an admin accepts the new key with parleyd peer add NAME URL --key KEY\"",
          origin, crypto::format_public_key(public_key),
          crypto::format_public_key(peer->public_key), chain.error().message);
      return make_error("unknown_key", "the key presented by " + origin +
                                           " is not its pinned key and no "
                                           "endorsed rotation leads to it");
    }
    if (doc->current()->public_key != peer->public_key) {
      pin(origin, doc->current()->public_key);
      spdlog::warn(
          "event=peer_key_rotated peer={} old={} new={} note=\"endorsed by the pinned key\"",
          origin, crypto::format_public_key(peer->public_key),
          crypto::format_public_key(doc->current()->public_key));
    }
    return ok_status();
  }

  // POST /federation/v1/query/{kind}: directory questions about one of our users, asked for a
  // user of the origin node (spec/federation.md section 5).
  Result<Answer> query(const std::string& kind, const std::string& origin,
                       const std::string& body) {
    if (kind == "hello") {
      // A peer that just started (spec/federation.md section 7): its verified request already
      // reset our backoff towards it; nothing else to do.
      Answer a;
      a.msgpack = wire::MapWriter().finish();
      return a;
    }
    if (kind == "conv_pull") {
      // A node catching up on a group (spec/federation.md section 6): its clock, our events.
      wire::Limits limits;
      limits.max_map = 4096;
      auto msg = wire::Message::parse(body, limits);
      if (!msg.ok()) return make_error("bad_request", "conv_pull: " + msg.error().message);
      Result<std::string> answer = make_error("internal", "unset");
      ctx_.run_on_core([&](Core& core) { answer = core.conv_pull_answer(origin, msg->root()); });
      if (!answer.ok()) return answer.take_error();
      Answer a;
      a.msgpack = std::move(answer).value();
      return a;
    }
    PARLEY_ASSIGN_OR_RETURN(q, federation::DirectoryQuery::decode(body));
    PARLEY_ASSIGN_OR_RETURN(asker_address, wire::parse_address(q.asker));
    if (asker_address.domain != origin) {
      return make_error("forbidden", "asker " + q.asker + " is not a user of " + origin);
    }
    // The core reads the kind's fields (devices) from the same, now validated, bytes.
    auto msg = wire::Message::parse(body);
    if (!msg.ok()) return make_error("bad_request", "query: " + msg.error().message);
    Result<std::string> answer = make_error("internal", "unset");
    ctx_.run_on_core(
        [&](Core& core) { answer = core.directory_answer(kind, q.user, origin, msg->root()); });
    if (!answer.ok()) return answer.take_error();
    Answer a;
    a.msgpack = std::move(answer).value();
    return a;
  }

  Result<std::int64_t> receive(const std::string& origin, const std::string& body) {
    PARLEY_ASSIGN_OR_RETURN(txn, federation::parse_transaction(body));
    if (txn.origin != origin) return make_error("forbidden", "body origin differs from signer");
    std::vector<Core::InboundEvent> events;
    events.reserve(txn.events.size());
    for (auto& e : txn.events) events.push_back({e.id, std::move(e.payload)});
    Result<std::int64_t> applied = make_error("internal", "unset");
    ctx_.run_on_core(
        [&](Core& core) { applied = core.apply_federation(origin, txn.epoch, events); });
    if (applied.ok()) {
      spdlog::info("event=federation_received peer={} events={} applied_upto={}", origin,
                   events.size(), *applied);
    }
    return applied;
  }

  FederationContext ctx_;
  HttpServer server_;
  federation::ReplayGuard replay_{kWindowMs};
  Admission admission_;
  std::atomic<bool> allowlist_only_;  // federation.policy, reloadable
  std::mutex refusals_mu_;
  RateLimiter refusals_{kRefusalsPerWindow, kRefusalWindowMs};
};

FederationApi::FederationApi(FederationContext context)
    : impl_(std::make_unique<Impl>(std::move(context))) {}
FederationApi::~FederationApi() { impl_->stop(); }
Status FederationApi::start() { return impl_->start(); }
void FederationApi::stop() { impl_->stop(); }
void FederationApi::reload(const NodeConfig& fresh) { impl_->reload(fresh); }
Snapshot::Listener FederationApi::stats() const {
  const auto s = impl_->stats();
  return {"federation", s.open_connections, s.refused_connections, s.timeouts, s.overloaded};
}

}  // namespace parley::node
