// The client gateway: accepts long-lived TCP connections and turns bytes into frames for the
// Core (spec/client-protocol.md sections 1 and 5).
//
// Each connection runs on its own strand of the network io_context: one read loop, one write
// queue bounded by client.max_outbound_frames and client.max_outbound_bytes (a consumer that falls
// behind is disconnected with `bye slow_consumer`), a heartbeat timer reset by every complete
// frame. Frames go to the Core on the core io_context; the Core answers through the connection's
// Outlet. Until a connection authenticates its frames may hold kMaxPreauthFrame bytes, and each
// source IP may hold client.max_unauthenticated_per_source such connections (more are closed at
// once). Thread-safety: construct, listen and stop from one thread; stats are atomic.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "parley/node/config.h"
#include "parley/result.h"

namespace boost::asio {
class io_context;
}

namespace parley::node {

class Core;

class Gateway {
 public:
  Gateway(boost::asio::io_context& net, boost::asio::io_context& core_ctx, Core& core,
          const NodeConfig& config);
  ~Gateway();

  // Binds and starts accepting. Fails with "io" if the address is taken.
  Status listen(const HostPort& where);
  std::uint16_t port() const;
  // Stops accepting new connections (existing ones are closed through the Core).
  void stop_accepting();

  std::int64_t open_connections() const;
  std::int64_t queued_frames() const;
  std::int64_t queued_bytes() const;
  // Connections closed with `bye slow_consumer` (over client.max_outbound_frames or _bytes).
  std::int64_t slow_consumers() const;
  // Connections closed at accept: over client.max_connections, and over the per-source bound
  // of unauthenticated connections.
  std::int64_t refused_max_connections() const;
  std::int64_t refused_per_source() const;

  struct Counters;  // shared with the connections (gateway.cpp)

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
  std::shared_ptr<Counters> counters_;
};

}  // namespace parley::node
