// A client's connection to its home node: one TCP socket carrying frames
// (spec/client-protocol.md section 1). Blocking with deadlines; used by one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "parley/frame.h"
#include "parley/message.h"
#include "parley/result.h"

namespace parley::client {

class Connection {
 public:
  // "host:port"; fails with "unreachable".
  static Result<std::unique_ptr<Connection>> open(const std::string& host_port, int timeout_ms);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  Status send(const std::string& payload);
  // The next frame, waiting at most timeout_ms: nullopt on timeout; "connection_lost" when the
  // node closed the connection; "malformed_frame" on bytes that are not the protocol.
  Result<std::optional<wire::Message>> read(int timeout_ms);

 private:
  explicit Connection(int fd) : fd_(fd) {}
  int fd_;
  wire::FrameDecoder decoder_{16 * 1024 * 1024};
};

}  // namespace parley::client
