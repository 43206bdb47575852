// The node's counters and the Prometheus text exposition (format 0.0.4) of them.
//
// Metrics is one object shared by the node's threads: counters and histograms are relaxed
// atomics (no locks on the hot paths); errors by code are counted under a mutex (errors are
// rare). Gauges that are read rather than counted (connections, queue depths, database size)
// are gathered at scrape time into a Snapshot and rendered together with the counters.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace parley::node {

// A histogram with fixed upper bounds (seconds).
class Histogram {
 public:
  static constexpr std::array<double, 11> kBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                     0.5,   1,    2.5,   5,    10};
  void observe(double seconds);
  // Cumulative bucket counts (one per bound, then +Inf), sum and count.
  struct Values {
    std::array<std::int64_t, kBounds.size() + 1> cumulative{};
    double sum = 0;
    std::int64_t count = 0;
  };
  Values values() const;

 private:
  std::array<std::atomic<std::int64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<std::int64_t> sum_micros_{0};
};

struct Metrics {
  std::atomic<std::int64_t> logins_ok{0}, logins_failed{0};
  std::atomic<std::int64_t> logins_rate_limited{0};  // refused before the password was checked
  std::atomic<std::int64_t> messages_in{0};          // 1:1 messages and group events stored for a
                                                     // local sender
  std::atomic<std::int64_t> deliveries{0};           // message and group events pushed to devices
  std::atomic<std::int64_t> federation_events_in{0}, federation_events_out{0};
  std::atomic<std::int64_t> federation_txn_ok{0}, federation_txn_failed{0};
  Histogram federation_latency;                  // one transaction: send → answer
  std::atomic<std::int64_t> core_lag_micros{0};  // how late the last core tick ran
  std::atomic<std::int64_t> net_lag_micros{0};   // the same on the network thread
  std::atomic<std::int64_t> core_lag_max_micros{0};
  // Removed by retention purges (scheduled or by hand).
  std::atomic<std::int64_t> purged_messages{0}, purged_stream_entries{0};

  void count_error(const std::string& code);
  std::map<std::string, std::int64_t> errors() const;
  // Federation work refused or given up on without failing a transaction, by reason
  // (spec/federation.md section 4): inbound events acknowledged and dropped, outbound events
  // held back or expired.
  void count_federation_drop(const std::string& reason);
  std::map<std::string, std::int64_t> federation_drops() const;

 private:
  mutable std::mutex errors_mutex_;
  std::map<std::string, std::int64_t> errors_;
  std::map<std::string, std::int64_t> federation_drops_;  // under errors_mutex_
};

// Values read at scrape time.
struct Snapshot {
  std::int64_t connections = 0;
  std::int64_t queued_frames = 0;
  // Client connections closed at accept (counters): over client.max_connections, and over
  // client.max_unauthenticated_per_source.
  std::int64_t client_refused_max_connections = 0;
  std::int64_t client_refused_per_source = 0;
  std::int64_t client_queued_bytes = 0;    // gauge: bytes in client write queues
  std::int64_t client_slow_consumers = 0;  // counter: connections closed as slow consumers
  std::int64_t database_bytes = 0;
  std::int64_t uptime_seconds = 0;
  struct Peer {
    std::string name;
    std::int64_t queued = 0;
    std::int64_t failures = 0;
  };
  std::vector<Peer> peers;
  // The node's HTTP listeners (federation, ...): open connections and what their bounds did.
  struct Listener {
    std::string name;
    std::int64_t open = 0;
    std::int64_t refused = 0;     // connections over the total or per-source cap
    std::int64_t timeouts = 0;    // headers or bodies that did not arrive in time
    std::int64_t overloaded = 0;  // 503: no memory budget or worker slot left
  };
  std::vector<Listener> listeners;
};

// The exposition text of `m` and `s`.
std::string render_metrics(const Metrics& m, const Snapshot& s);

// Escapes a label value: backslash, double quote and newline (exposition format).
std::string escape_label(const std::string& value);

}  // namespace parley::node
