#include "parley/node/federation_api.h"

#include <spdlog/spdlog.h>

#include <cpprest/http_listener.h>

namespace parley::node {

namespace http = web::http;
using http::experimental::listener::http_listener;

class FederationApi::Impl {
 public:
  Impl(NodeConfig c, std::string doc) : config_(std::move(c)), key_document_(std::move(doc)) {}

  Status start() {
    const std::string url = "http://" + config_.federation_listen.str() + "/federation/v1";
    try {
      listener_ = std::make_unique<http_listener>(url);
      listener_->support([this](const http::http_request& req) { handle(req); });
      listener_->open().wait();
    } catch (const std::exception& e) {
      return make_error("io", "cannot listen on " + config_.federation_listen.str() +
                                  " for federation: " + e.what());
    }
    return ok_status();
  }

  void stop() {
    if (!listener_) return;
    try {
      listener_->close().wait();
    } catch (const std::exception&) {
    }
    listener_.reset();
  }

 private:
  void handle(const http::http_request& req) {
    try {
      const auto path = req.relative_uri().path();
      if (req.method() == http::methods::GET && (path == "/key" || path == "key")) {
        http::http_response resp(http::status_codes::OK);
        resp.set_body(std::vector<unsigned char>(key_document_.begin(), key_document_.end()));
        resp.headers().set_content_type("application/msgpack");
        req.reply(resp).wait();
        return;
      }
      req.reply(http::status_codes::NotFound).wait();
    } catch (const std::exception& e) {
      spdlog::warn("event=federation_request_failed reason=\"{}\"", e.what());
    }
  }

  NodeConfig config_;
  std::string key_document_;
  std::unique_ptr<http_listener> listener_;
};

FederationApi::FederationApi(NodeConfig config, std::string key_document)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(key_document))) {}
FederationApi::~FederationApi() { impl_->stop(); }
Status FederationApi::start() { return impl_->start(); }
void FederationApi::stop() { impl_->stop(); }

}  // namespace parley::node
