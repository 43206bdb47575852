#include "parley/node/federation_api.h"

#include <spdlog/spdlog.h>

#include <cpprest/http_client.h>
#include <chrono>
#include <mutex>

#include "http_endpoint.h"
#include "parley/crypto/sign.h"
#include "parley/federation/key_document.h"
#include "parley/federation/peers.h"
#include "parley/federation/signing.h"
#include "parley/federation/transaction.h"
#include "parley/node/core.h"

namespace parley::node {

namespace http = web::http;

namespace {

constexpr std::size_t kMaxBody = federation::kMaxTransactionBytes;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

http::status_code status_for(const std::string& code) {
  if (code == "denied" || code == "forbidden") return http::status_codes::Forbidden;
  if (code == "wrong_destination") return 421;
  if (code == "replayed") return http::status_codes::Conflict;
  if (code == "payload_too_large") return 413;
  if (code == "malformed_signature" || code == "bad_request") return http::status_codes::BadRequest;
  if (code == "stale_timestamp" || code == "unknown_key" || code == "bad_signature") {
    return http::status_codes::Unauthorized;
  }
  return http::status_codes::InternalError;
}

}  // namespace

class FederationApi::Impl {
 public:
  explicit Impl(FederationContext c) : ctx_(std::move(c)) {}

  Status start() {
    return endpoint_.start("http://" + ctx_.config.federation_listen.str() + "/federation/v1",
                           "federation", [this](const http::http_request& req) { handle(req); });
  }

  void stop() { endpoint_.stop(); }

 private:
  void reply(const http::http_request& req, const Error& e) {
    spdlog::info("event=federation_refused code={} reason=\"{}\"", e.code, e.message);
    web::json::value v;
    v["code"] = web::json::value::string(e.code);
    v["message"] = web::json::value::string(e.message);
    req.reply(status_for(e.code), v).wait();
  }

  void handle(const http::http_request& req) {
    try {
      const std::string path = req.relative_uri().path();
      const std::string full = req.request_uri().to_string();
      if (req.method() == http::methods::GET && (path == "/key" || path == "key")) {
        http::http_response resp(http::status_codes::OK);
        resp.set_body(
            std::vector<unsigned char>(ctx_.key_document.begin(), ctx_.key_document.end()));
        resp.headers().set_content_type("application/msgpack");
        req.reply(resp).wait();
        return;
      }
      if (req.method() == http::methods::PUT && path.rfind("/send/", 0) == 0) {
        auto r = receive(req, full);
        if (!r.ok()) return reply(req, r.error());
        web::json::value v;
        v["applied_upto"] = web::json::value::number(static_cast<int64_t>(*r));
        req.reply(http::status_codes::OK, v).wait();
        return;
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

  // Whether `public_key` may sign for `origin` at `ts`: pinned key, or fetch and pin on first
  // contact through the peer's static URL.
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
    if (!peer && ctx_.config.federation_policy == "allowlist") {
      return make_error("denied", origin + " is not on this node's allowlist");
    }
    if (!peer) {
      return make_error("unknown_key", "no key known for " + origin +
                                           " (add it with parleyd peer add; discovery is not "
                                           "implemented yet)");
    }
    if (peer->public_key.empty()) {
      auto doc = fetch_key_document(*peer);
      if (!doc.ok()) return doc.take_error();
      const std::string current = doc->current()->public_key;
      ctx_.run_on_core([&](Core& core) {
        (void)federation::PeerStore(core.database()).pin_key(origin, current);
      });
      spdlog::warn("event=peer_key_pinned peer={} key={} note=\"trust on first use\"", origin,
                   crypto::format_public_key(current));
      return doc->valid_at(public_key, ts);
    }
    if (peer->public_key != public_key) {
      spdlog::warn(
          "event=peer_key_mismatch peer={} presented={} pinned={} note=\"refused until an "
          "admin re-adds the peer with the new key\"",
          origin, crypto::format_public_key(public_key),
          crypto::format_public_key(peer->public_key));
      return make_error("unknown_key", "the key presented by " + origin + " is not its pinned key");
    }
    return ok_status();
  }

  Result<federation::KeyDocument> fetch_key_document(const federation::Peer& peer) {
    try {
      http::client::http_client_config cc;
      cc.set_timeout(std::chrono::seconds(10));
      http::client::http_client client(peer.url, cc);
      const auto resp = client.request(http::methods::GET, "/federation/v1/key").get();
      const auto bytes = resp.extract_vector().get();
      return federation::parse_key_document(std::string(bytes.begin(), bytes.end()), peer.name);
    } catch (const std::exception& e) {
      return make_error("unknown_key", "cannot fetch the key of " + peer.name + ": " + e.what());
    }
  }

  Result<std::int64_t> receive(const http::http_request& req, const std::string& full_path) {
    const auto len = req.headers().content_length();
    if (len > kMaxBody) return make_error("payload_too_large", "transaction body over 4 MiB");
    const auto bytes = req.extract_vector().get();
    if (bytes.size() > kMaxBody)
      return make_error("payload_too_large", "transaction body over 4 MiB");
    const std::string body(bytes.begin(), bytes.end());
    const auto auth = req.headers().find("Authorization");
    if (auth == req.headers().end()) return make_error("malformed_signature", "no Authorization");
    federation::VerifyOptions opts{ctx_.config.name, now_ms(), 300'000};
    federation::KeyCheck keys = [this](const std::string& origin, const std::string& key,
                                       std::int64_t ts) { return check_key(origin, key, ts); };
    Result<federation::RequestSignature> sig = make_error("internal", "unset");
    {
      std::lock_guard<std::mutex> lock(replay_mu_);
      sig = federation::verify_request(auth->second, "PUT", full_path, body, opts, keys, replay_);
    }
    if (!sig.ok()) return sig.take_error();
    const std::string origin = sig->origin;
    ctx_.heard_from_peer();  // the peer is up: stop backing off towards it

    PARLEY_ASSIGN_OR_RETURN(txn, federation::parse_transaction(body));
    if (txn.origin != origin) return make_error("forbidden", "body origin differs from signer");
    std::vector<Core::InboundEvent> events;
    events.reserve(txn.events.size());
    for (auto& e : txn.events) events.push_back({e.id, std::move(e.payload)});
    Result<std::int64_t> applied = make_error("internal", "unset");
    ctx_.run_on_core([&](Core& core) { applied = core.apply_federation(origin, events); });
    if (applied.ok()) {
      spdlog::info("event=federation_received peer={} events={} applied_upto={}", origin,
                   events.size(), *applied);
    }
    return applied;
  }

  FederationContext ctx_;
  HttpEndpoint endpoint_;
  std::mutex replay_mu_;
  federation::ReplayGuard replay_{300'000};
};

FederationApi::FederationApi(FederationContext context)
    : impl_(std::make_unique<Impl>(std::move(context))) {}
FederationApi::~FederationApi() { impl_->stop(); }
Status FederationApi::start() { return impl_->start(); }
void FederationApi::stop() { impl_->stop(); }

}  // namespace parley::node
