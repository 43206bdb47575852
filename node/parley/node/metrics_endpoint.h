// The metrics listener (metrics.listen): GET /metrics (Prometheus text format 0.0.4), /health
// (200 while the process serves HTTP) and /ready (200 once the node serves clients and its
// database is open; 503 with the reason before that and while stopping). Plain HTTP without
// authentication, so it is loopback-only unless metrics.allow_remote is set.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "parley/node/config.h"
#include "parley/node/metrics.h"
#include "parley/result.h"

namespace parley::node {

class MetricsEndpoint {
 public:
  // `snapshot` gathers the read-at-scrape-time values (called on the listener's worker).
  MetricsEndpoint(const Metrics& metrics, std::function<Snapshot()> snapshot);
  ~MetricsEndpoint();
  Status start(const HostPort& where);
  void stop();
  // Ready (empty reason) or not, and why.
  void set_ready(bool ready, std::string reason);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley::node
