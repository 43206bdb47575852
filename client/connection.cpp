#include "parley/client/connection.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace parley::client {

Result<std::unique_ptr<Connection>> Connection::open(const std::string& host_port, int timeout_ms) {
  const auto colon = host_port.rfind(':');
  if (colon == std::string::npos) {
    return make_error("bad_request", "server must be HOST:PORT, not '" + host_port + "'");
  }
  std::string host = host_port.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  const std::string port = host_port.substr(colon + 1);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || !res) {
    return make_error("unreachable", "cannot resolve " + host_port);
  }
  std::string last = "no address";
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) continue;
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      rc = ::poll(&p, 1, timeout_ms) == 1 ? 0 : -1;
      int err = 0;
      socklen_t len = sizeof err;
      if (rc == 0 && (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)) {
        errno = err;
        rc = -1;
      } else if (rc != 0) {
        errno = ETIMEDOUT;
      }
    }
    if (rc == 0) {
      freeaddrinfo(res);
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return std::unique_ptr<Connection>(new Connection(fd));
    }
    last = std::strerror(errno);
    ::close(fd);
  }
  freeaddrinfo(res);
  return make_error("unreachable", "cannot connect to " + host_port + ": " + last);
}

Connection::~Connection() { ::close(fd_); }

Status Connection::send(const std::string& payload) {
  const std::string frame = wire::encode_frame(payload);
  std::size_t off = 0;
  while (off < frame.size()) {
    const ssize_t n = ::send(fd_, frame.data() + off, frame.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, 30000) != 1) return make_error("connection_lost", "send timed out");
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return make_error("connection_lost", "the connection to the node was lost");
  }
  return ok_status();
}

Result<std::optional<wire::Message>> Connection::read(int timeout_ms) {
  for (;;) {
    if (auto payload = decoder_.next()) {
      auto m = wire::Message::parse(*payload, wire::Limits{4096, 64, 1u << 20, 1u << 24, 8});
      if (!m.ok()) return m.take_error();
      return std::optional<wire::Message>(std::move(m).value());
    }
    pollfd p{fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, timeout_ms);
    if (r == 0) return std::optional<wire::Message>();
    if (r < 0) {
      if (errno == EINTR) return std::optional<wire::Message>();
      return make_error("connection_lost", std::strerror(errno));
    }
    char buf[16384];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0) return make_error("connection_lost", "the node closed the connection");
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return make_error("connection_lost", std::strerror(errno));
    }
    PARLEY_TRY(decoder_.feed(std::string_view(buf, static_cast<std::size_t>(n))));
  }
}

}  // namespace parley::client
