#include "parley/node/metrics.h"

#include <cstdio>
#include <sstream>

namespace parley::node {

void Histogram::observe(double seconds) {
  std::size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<std::int64_t>(seconds * 1e6), std::memory_order_relaxed);
}

Histogram::Values Histogram::values() const {
  Values v;
  std::int64_t running = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    v.cumulative[i] = running;
  }
  v.count = running;
  v.sum = static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) / 1e6;
  return v;
}

void Metrics::count_error(const std::string& code) {
  std::lock_guard<std::mutex> lock(errors_mutex_);
  ++errors_[code];
}

std::map<std::string, std::int64_t> Metrics::errors() const {
  std::lock_guard<std::mutex> lock(errors_mutex_);
  return errors_;
}

void Metrics::count_federation_drop(const std::string& reason) {
  std::lock_guard<std::mutex> lock(errors_mutex_);
  ++federation_drops_[reason];
}

std::map<std::string, std::int64_t> Metrics::federation_drops() const {
  std::lock_guard<std::mutex> lock(errors_mutex_);
  return federation_drops_;
}

std::string escape_label(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

class Writer {
 public:
  void family(const char* name, const char* type, const char* help) {
    out_ << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  }
  void sample(const std::string& name, double value, const std::string& labels = {}) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.15g", value);
    out_ << name;
    if (!labels.empty()) out_ << "{" << labels << "}";
    out_ << " " << buf << "\n";
  }
  void simple(const char* name, const char* type, const char* help, double value) {
    family(name, type, help);
    sample(name, value);
  }
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

double load(const std::atomic<std::int64_t>& a) {
  return static_cast<double>(a.load(std::memory_order_relaxed));
}

}  // namespace

std::string render_metrics(const Metrics& m, const Snapshot& s) {
  Writer w;
  w.simple("parley_client_connections", "gauge", "Open client connections.",
           static_cast<double>(s.connections));
  w.simple("parley_client_queued_frames", "gauge",
           "Frames waiting in client connections' write queues.",
           static_cast<double>(s.queued_frames));
  w.simple("parley_client_queued_bytes", "gauge",
           "Bytes of the frames waiting in client connections' write queues.",
           static_cast<double>(s.client_queued_bytes));
  w.simple("parley_client_slow_consumers_total", "counter",
           "Client connections closed because they did not read their frames fast enough.",
           static_cast<double>(s.client_slow_consumers));
  w.family("parley_client_connections_refused_total", "counter",
           "Client connections closed at accept, by the bound they hit.");
  w.sample("parley_client_connections_refused_total",
           static_cast<double>(s.client_refused_max_connections), "reason=\"max_connections\"");
  w.sample("parley_client_connections_refused_total",
           static_cast<double>(s.client_refused_per_source),
           "reason=\"unauthenticated_per_source\"");
  w.family("parley_logins_total", "counter", "Client logins and session resumes, by result.");
  w.sample("parley_logins_total", load(m.logins_ok), "result=\"ok\"");
  w.sample("parley_logins_total", load(m.logins_failed), "result=\"failed\"");
  w.sample("parley_logins_total", load(m.logins_rate_limited), "result=\"rate_limited\"");
  w.simple("parley_messages_received_total", "counter",
           "Messages and group events stored for this node's senders.", load(m.messages_in));
  w.simple("parley_deliveries_total", "counter",
           "Message and group events pushed to connected devices.", load(m.deliveries));
  w.family("parley_retention_purged_total", "counter",
           "Rows removed by retention purges: 1:1 messages and delivered stream entries.");
  w.sample("parley_retention_purged_total", load(m.purged_messages), "kind=\"message\"");
  w.sample("parley_retention_purged_total", load(m.purged_stream_entries), "kind=\"stream\"");
  w.family("parley_federation_events_total", "counter",
           "Federation events, by direction (in: applied from peers; out: sent to peers).");
  w.sample("parley_federation_events_total", load(m.federation_events_in), "direction=\"in\"");
  w.sample("parley_federation_events_total", load(m.federation_events_out), "direction=\"out\"");
  w.family("parley_federation_transactions_total", "counter",
           "Outgoing federation transactions, by result.");
  w.sample("parley_federation_transactions_total", load(m.federation_txn_ok), "result=\"ok\"");
  w.sample("parley_federation_transactions_total", load(m.federation_txn_failed),
           "result=\"failed\"");
  const auto h = m.federation_latency.values();
  w.family("parley_federation_transaction_seconds", "histogram",
           "Time from sending a federation transaction to its answer.");
  for (std::size_t i = 0; i < Histogram::kBounds.size(); ++i) {
    char le[32];
    std::snprintf(le, sizeof le, "%g", Histogram::kBounds[i]);
    w.sample("parley_federation_transaction_seconds_bucket", static_cast<double>(h.cumulative[i]),
             std::string("le=\"") + le + "\"");
  }
  w.sample("parley_federation_transaction_seconds_bucket", static_cast<double>(h.cumulative.back()),
           "le=\"+Inf\"");
  w.sample("parley_federation_transaction_seconds_sum", h.sum);
  w.sample("parley_federation_transaction_seconds_count", static_cast<double>(h.count));
  w.family("parley_federation_dropped_total", "counter",
           "Federation events acknowledged and dropped (inbound) or given up on (outbound), by "
           "reason.");
  for (const auto& [reason, n] : m.federation_drops()) {
    w.sample("parley_federation_dropped_total", static_cast<double>(n),
             "reason=\"" + escape_label(reason) + "\"");
  }
  w.family("parley_peer_queued_events", "gauge",
           "Events waiting in the outbound queue, per federation peer.");
  for (const auto& p : s.peers) {
    w.sample("parley_peer_queued_events", static_cast<double>(p.queued),
             "peer=\"" + escape_label(p.name) + "\"");
  }
  w.family("parley_peer_failures", "gauge",
           "Consecutive failed delivery attempts, per federation peer.");
  for (const auto& p : s.peers) {
    w.sample("parley_peer_failures", static_cast<double>(p.failures),
             "peer=\"" + escape_label(p.name) + "\"");
  }
  w.family("parley_http_connections", "gauge", "Open connections, per HTTP listener.");
  for (const auto& l : s.listeners) {
    w.sample("parley_http_connections", static_cast<double>(l.open),
             "listener=\"" + escape_label(l.name) + "\"");
  }
  w.family("parley_http_refused_total", "counter",
           "What an HTTP listener's bounds turned away, per listener and reason (connection: "
           "over the connection caps; timeout: a header or body too slow; overloaded: 503).");
  for (const auto& l : s.listeners) {
    const std::string name = "listener=\"" + escape_label(l.name) + "\",reason=";
    w.sample("parley_http_refused_total", static_cast<double>(l.refused), name + "\"connection\"");
    w.sample("parley_http_refused_total", static_cast<double>(l.timeouts), name + "\"timeout\"");
    w.sample("parley_http_refused_total", static_cast<double>(l.overloaded),
             name + "\"overloaded\"");
  }
  w.family("parley_errors_total", "counter", "Error answers to clients, by error code.");
  for (const auto& [code, n] : m.errors()) {
    w.sample("parley_errors_total", static_cast<double>(n), "code=\"" + escape_label(code) + "\"");
  }
  w.simple("parley_database_bytes", "gauge", "Database file plus write-ahead log, in bytes.",
           static_cast<double>(s.database_bytes));
  w.family("parley_event_loop_lag_seconds", "gauge",
           "How late the last once-a-second tick ran, per thread (core: all state and storage; "
           "network: client sockets).");
  w.sample("parley_event_loop_lag_seconds", load(m.core_lag_micros) / 1e6, "loop=\"core\"");
  w.sample("parley_event_loop_lag_seconds", load(m.net_lag_micros) / 1e6, "loop=\"network\"");
  w.simple("parley_event_loop_lag_max_seconds", "gauge",
           "The largest core-thread lag seen since the start.", load(m.core_lag_max_micros) / 1e6);
  w.simple("parley_uptime_seconds", "gauge", "Seconds since the node started.",
           static_cast<double>(s.uptime_seconds));
  return w.str();
}

}  // namespace parley::node
