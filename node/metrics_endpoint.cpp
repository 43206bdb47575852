#include "parley/node/metrics_endpoint.h"

#include <mutex>

#include "http_endpoint.h"

namespace parley::node {

namespace http = web::http;

class MetricsEndpoint::Impl {
 public:
  Impl(const Metrics& m, std::function<Snapshot()> s) : metrics_(m), snapshot_(std::move(s)) {}

  Status start(const std::string& host_port) {
    return endpoint_.start("http://" + host_port + "/", "metrics",
                           [this](const http::http_request& req) { handle(req); });
  }
  void stop() { endpoint_.stop(); }

  void set_ready(bool ready, std::string reason) {
    std::lock_guard<std::mutex> lock(mu_);
    ready_ = ready;
    reason_ = std::move(reason);
  }

 private:
  void handle(const http::http_request& req) {
    try {
      const std::string path = req.relative_uri().path();
      if (req.method() != http::methods::GET) {
        req.reply(http::status_codes::MethodNotAllowed, "only GET\n").wait();
      } else if (path == "/metrics") {
        http::http_response resp(http::status_codes::OK);
        resp.set_body(render_metrics(metrics_, snapshot_()),
                      "text/plain; version=0.0.4; charset=utf-8");
        req.reply(resp).wait();
      } else if (path == "/health") {
        req.reply(http::status_codes::OK, "ok\n").wait();
      } else if (path == "/ready") {
        bool ready = false;
        std::string reason;
        {
          std::lock_guard<std::mutex> lock(mu_);
          ready = ready_;
          reason = reason_;
        }
        req.reply(ready ? http::status_codes::OK : http::status_codes::ServiceUnavailable,
                  ready ? "ready\n" : "not ready: " + reason + "\n")
            .wait();
      } else {
        req.reply(http::status_codes::NotFound, "not found: try /metrics, /health, /ready\n")
            .wait();
      }
    } catch (const std::exception&) {
      // The scraper went away; nothing to answer.
    }
  }

  const Metrics& metrics_;
  std::function<Snapshot()> snapshot_;
  HttpEndpoint endpoint_;
  std::mutex mu_;
  bool ready_ = false;
  std::string reason_ = "starting";
};

MetricsEndpoint::MetricsEndpoint(const Metrics& metrics, std::function<Snapshot()> snapshot)
    : impl_(std::make_unique<Impl>(metrics, std::move(snapshot))) {}
MetricsEndpoint::~MetricsEndpoint() = default;
Status MetricsEndpoint::start(const std::string& host_port) { return impl_->start(host_port); }
void MetricsEndpoint::stop() { impl_->stop(); }
void MetricsEndpoint::set_ready(bool ready, std::string reason) {
  impl_->set_ready(ready, std::move(reason));
}

}  // namespace parley::node
