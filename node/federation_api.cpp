#include "parley/node/federation_api.h"

#include <atomic>

#include <spdlog/spdlog.h>

#include <boost/asio/ssl.hpp>
#include <chrono>
#include <map>
#include <mutex>

#include "federation_client.h"
#include "http_endpoint.h"
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

namespace http = web::http;

namespace {

constexpr std::size_t kMaxBody = federation::kMaxTransactionBytes;
constexpr std::int64_t kKeyDocCacheMs = 60'000;
// Refused (unauthenticated) requests allowed per source address and window before 429.
constexpr std::uint32_t kRefusalsPerWindow = 200;
constexpr std::int64_t kRefusalWindowMs = 10'000;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

http::status_code status_for(const std::string& code) {
  if (code == "denied" || code == "forbidden") return http::status_codes::Forbidden;
  if (code == "wrong_destination") return 421;
  if (code == "replayed" || code == "stale_epoch") return http::status_codes::Conflict;
  if (code == "payload_too_large") return 413;
  if (code == "too_many_requests" || code == "rate_limited") return 429;
  if (code == "not_found") return http::status_codes::NotFound;
  if (code == "malformed_signature" || code == "bad_request") return http::status_codes::BadRequest;
  if (code == "stale_timestamp" || code == "unknown_key" || code == "bad_signature") {
    return http::status_codes::Unauthorized;
  }
  if (code == "unavailable") return http::status_codes::ServiceUnavailable;
  return http::status_codes::InternalError;
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
        admission_(ctx_.config.federation_requests_per_second,
                   ctx_.config.federation_concurrent_per_origin),
        allowlist_only_(ctx_.config.federation_policy == "allowlist") {}

  void reload(const NodeConfig& fresh) {
    admission_.set_limits(fresh.federation_requests_per_second,
                          fresh.federation_concurrent_per_origin);
    allowlist_only_.store(fresh.federation_policy == "allowlist");
  }

  Status start() {
    http::experimental::listener::http_listener_config lc;
    if (!ctx_.config.federation_tls_cert.empty()) {
      const std::string cert = ctx_.config.federation_tls_cert;
      const std::string key = ctx_.config.federation_tls_key;
      auto setup = [cert, key](boost::asio::ssl::context& ctx) {
        ctx.set_options(boost::asio::ssl::context::default_workarounds |
                        boost::asio::ssl::context::no_sslv2 | boost::asio::ssl::context::no_sslv3 |
                        boost::asio::ssl::context::no_tlsv1 |
                        boost::asio::ssl::context::no_tlsv1_1);
        ctx.use_certificate_chain_file(cert);
        ctx.use_private_key_file(key, boost::asio::ssl::context::pem);
      };
      try {  // fail at start, with the file named, rather than on every connection
        boost::asio::ssl::context probe(boost::asio::ssl::context::tls_server);
        setup(probe);
      } catch (const std::exception& e) {
        return make_error("bad_config",
                          "federation TLS certificate " + cert + " / key " + key + ": " + e.what());
      }
      lc.set_ssl_context_callback(setup);
    }
    return endpoint_.start(
        federation_scheme(ctx_.config) + "://" + ctx_.config.federation_listen.str() + "/",
        "federation", [this](const http::http_request& req) { handle(req); }, lc);
  }

  void stop() { endpoint_.stop(); }

 private:
  void reply(const http::http_request& req, const Error& e, std::int64_t retry_after_ms = 0) {
    spdlog::info("event=federation_refused code={} reason=\"{}\"", e.code, e.message);
    web::json::value v;
    v["code"] = web::json::value::string(e.code);
    v["message"] = web::json::value::string(e.message);
    http::http_response resp(status_for(e.code));
    resp.set_body(v);
    if (retry_after_ms > 0) {
      resp.headers().add("Retry-After", std::to_string((retry_after_ms + 999) / 1000));
    }
    req.reply(resp).wait();
  }

  void handle(const http::http_request& req) {
    try {
      const std::string path = req.relative_uri().path();
      const std::string full = req.request_uri().to_string();
      if (req.method() == http::methods::GET && path == "/federation/v1/key") {
        http::http_response resp(http::status_codes::OK);
        resp.set_body(
            std::vector<unsigned char>(ctx_.key_document.begin(), ctx_.key_document.end()));
        resp.headers().set_content_type("application/msgpack");
        req.reply(resp).wait();
        return;
      }
      if (req.method() == http::methods::GET && path == "/.well-known/parley") {
        web::json::value v;
        v["federation_url"] = web::json::value::string(federation_public_url(ctx_.config));
        req.reply(http::status_codes::OK, v).wait();
        return;
      }
      if (req.method() == http::methods::PUT && path.rfind("/federation/v1/send/", 0) == 0) {
        return signed_call(
            req, full,
            [this](const std::string& origin, const std::string& body) -> Result<Answer> {
              PARLEY_ASSIGN_OR_RETURN(applied, receive(origin, body));
              Answer a;
              a.json["applied_upto"] = web::json::value::number(static_cast<int64_t>(applied));
              return a;
            });
      }
      if (req.method() == http::methods::POST && path.rfind("/federation/v1/query/", 0) == 0) {
        const std::string kind = path.substr(std::string("/federation/v1/query/").size());
        return signed_call(req, full,
                           [this, kind](const std::string& origin, const std::string& body) {
                             return query(kind, origin, body);
                           });
      }
      reply(req, make_error("not_found", "no federation route " + full));
    } catch (const std::exception& e) {
      spdlog::warn("event=federation_request_failed reason=\"{}\"", e.what());
      try {
        req.reply(http::status_codes::BadRequest).wait();
      } catch (const std::exception&) {
      }
    }
  }

  // A handler's answer: JSON, or msgpack bytes.
  struct Answer {
    web::json::value json;
    std::string msgpack;
  };
  using SignedHandler =
      std::function<Result<Answer>(const std::string& origin, const std::string& body)>;

  // Authenticates a signed request, admits it for its origin and runs `handler`. Refusals of
  // unauthenticated requests count against the source address (429 once it sends too many).
  void signed_call(const http::http_request& req, const std::string& full_path,
                   const SignedHandler& handler) {
    const std::string source = req.remote_address();
    const std::int64_t now = now_ms();
    {
      std::lock_guard<std::mutex> lock(refusals_mu_);
      if (const auto wait = refusals_.blocked_for(source, now); wait > 0) {
        return reply(req,
                     make_error("too_many_requests",
                                "too many refused requests from " + source + "; slow down"),
                     wait);
      }
    }
    auto origin = authenticate(req, full_path);
    if (!origin.ok()) {
      std::lock_guard<std::mutex> lock(refusals_mu_);
      refusals_.record_failure(source, now);
      return reply(req, origin.error());
    }
    const auto& [name, body] = *origin;
    if (const auto wait = admission_.admit(name, now_ms()); wait > 0) {
      spdlog::warn("event=federation_throttled peer={} retry_after_ms={}", name, wait);
      return reply(req, make_error("too_many_requests", name + " is over its request rate"), wait);
    }
    Result<Answer> r = make_error("internal", "unset");
    try {
      r = handler(name, body);
    } catch (...) {
      admission_.release(name);
      throw;
    }
    admission_.release(name);
    if (!r.ok()) {
      return reply(req, r.error(), r.error().code == "rate_limited" ? 60'000 : 0);
    }
    if (r->msgpack.empty()) {
      req.reply(http::status_codes::OK, r->json).wait();
      return;
    }
    http::http_response resp(http::status_codes::OK);
    resp.set_body(std::vector<unsigned char>(r->msgpack.begin(), r->msgpack.end()));
    resp.headers().set_content_type("application/msgpack");
    req.reply(resp).wait();
  }

  // Verifies the signature; returns the origin and the exact body.
  Result<std::pair<std::string, std::string>> authenticate(const http::http_request& req,
                                                           const std::string& full_path) {
    if (req.headers().content_length() > kMaxBody) {
      return make_error("payload_too_large", "request body over 4 MiB");
    }
    const auto bytes = req.extract_vector().get();
    if (bytes.size() > kMaxBody) return make_error("payload_too_large", "request body over 4 MiB");
    std::string body(bytes.begin(), bytes.end());
    const auto auth = req.headers().find("Authorization");
    if (auth == req.headers().end()) return make_error("malformed_signature", "no Authorization");
    federation::VerifyOptions opts{ctx_.config.name, now_ms(), 300'000};
    federation::KeyCheck keys = [this](const std::string& origin, const std::string& key,
                                       std::int64_t ts) { return check_key(origin, key, ts); };
    PARLEY_ASSIGN_OR_RETURN(sig, federation::verify_request(auth->second, req.method(), full_path,
                                                            body, opts, keys, replay_));
    ctx_.heard_from_peer(sig.origin);  // the peer is up: stop backing off towards it
    return std::make_pair(sig.origin, std::move(body));
  }

  // The key document of `origin`, cached for a minute so a burst of requests signed with a key
  // we have not pinned costs one fetch.
  Result<federation::KeyDocument> key_document(const std::string& origin) {
    {
      std::lock_guard<std::mutex> lock(docs_mu_);
      auto it = docs_.find(origin);
      if (it != docs_.end() && now_ms() - it->second.first < kKeyDocCacheMs) {
        return it->second.second;
      }
    }
    auto doc = ctx_.client->key_document(origin);
    if (!doc.ok()) {
      return make_error("unknown_key", "no key known for " + origin + ": " + doc.error().message);
    }
    std::lock_guard<std::mutex> lock(docs_mu_);
    if (docs_.size() > 10000) docs_.clear();
    docs_[origin] = {now_ms(), *doc};
    return doc;
  }

  void pin(const std::string& origin, const std::string& key) {
    ctx_.run_on_core(
        [&](Core& core) { (void)federation::PeerStore(core.database()).pin_key(origin, key); });
  }

  // Whether `public_key` may sign for `origin` at `ts`: the pinned key; a key of a document that
  // continues the pinned key through endorsements (a rotation, re-pinned to its current key); or,
  // with no pinned key and the open policy, the key document fetched on first contact.
  Status check_key(const std::string& origin, const std::string& public_key, std::int64_t ts) {
    std::optional<federation::Peer> peer;
    Status looked = ok_status();
    ctx_.run_on_core([&](Core& core) {
      auto p = federation::PeerStore(core.database()).get(origin);
      if (!p.ok()) {
        looked = p.take_error();
        return;
      }
      peer = *p;
    });
    PARLEY_TRY(looked);
    if (peer && peer->state == "denied") return make_error("denied", origin + " is denied");
    if (!peer && allowlist_only_.load()) {
      return make_error("denied", origin + " is not on this node's allowlist");
    }
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
  HttpEndpoint endpoint_;
  federation::ReplayGuard replay_{300'000};
  Admission admission_;
  std::atomic<bool> allowlist_only_;  // federation.policy, reloadable
  std::mutex refusals_mu_;
  RateLimiter refusals_{kRefusalsPerWindow, kRefusalWindowMs};
  std::mutex docs_mu_;
  std::map<std::string, std::pair<std::int64_t, federation::KeyDocument>> docs_;
};

FederationApi::FederationApi(FederationContext context)
    : impl_(std::make_unique<Impl>(std::move(context))) {}
FederationApi::~FederationApi() { impl_->stop(); }
Status FederationApi::start() { return impl_->start(); }
void FederationApi::stop() { impl_->stop(); }
void FederationApi::reload(const NodeConfig& fresh) { impl_->reload(fresh); }

}  // namespace parley::node
