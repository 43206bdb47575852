#include "parley/node/metrics_endpoint.h"

#include <mutex>

#include <optional>

#include "http_server.h"

namespace parley::node {

class MetricsEndpoint::Impl {
 public:
  Impl(const Metrics& m, std::function<Snapshot()> s) : metrics_(m), snapshot_(std::move(s)) {}

  Status start(const HostPort& where) {
    return server_.start(
        where, std::nullopt, [this](const HttpRequest& head) { return on_head(head); },
        [this](const HttpRequest&) {
          HttpResponse r = HttpResponse::text(200, render_metrics(metrics_, snapshot_()));
          r.content_type = "text/plain; version=0.0.4; charset=utf-8";
          return r;
        });
  }
  void stop() { server_.stop(); }

  void set_ready(bool ready, std::string reason) {
    std::lock_guard<std::mutex> lock(mu_);
    ready_ = ready;
    reason_ = std::move(reason);
  }

 private:
  // The listener's own thread answers /health and /ready at once, whatever the core thread or
  // a scrape is doing; /metrics (which asks the core thread) goes to a worker.
  std::optional<HttpResponse> on_head(const HttpRequest& req) {
    const auto path = req.path();
    if (req.method != "GET") return HttpResponse::text(405, "only GET\n");
    if (path == "/metrics") return std::nullopt;
    if (path == "/health") return HttpResponse::text(200, "ok\n");
    if (path == "/ready") {
      std::lock_guard<std::mutex> lock(mu_);
      return ready_ ? HttpResponse::text(200, "ready\n")
                    : HttpResponse::text(503, "not ready: " + reason_ + "\n");
    }
    return HttpResponse::text(404, "not found: try /metrics, /health, /ready\n");
  }

  static HttpLimits limits() {
    HttpLimits l;
    l.max_connections = 64;
    l.max_connections_per_source = 16;
    l.max_body_bytes = 0;  // GET only
    l.workers = 1;
    l.max_queued = 8;
    l.max_queued_per_source = 4;
    return l;
  }

  const Metrics& metrics_;
  std::function<Snapshot()> snapshot_;
  HttpServer server_{"metrics", limits()};
  std::mutex mu_;
  bool ready_ = false;
  std::string reason_ = "starting";
};

MetricsEndpoint::MetricsEndpoint(const Metrics& metrics, std::function<Snapshot()> snapshot)
    : impl_(std::make_unique<Impl>(metrics, std::move(snapshot))) {}
MetricsEndpoint::~MetricsEndpoint() = default;
Status MetricsEndpoint::start(const HostPort& where) { return impl_->start(where); }
void MetricsEndpoint::stop() { impl_->stop(); }
void MetricsEndpoint::set_ready(bool ready, std::string reason) {
  impl_->set_ready(ready, std::move(reason));
}

}  // namespace parley::node
