// A small HTTP/1.1 server (Boost.Beast) for the node's HTTP listeners: federation, the admin API
// and metrics. Private to node/.
//
// Each server has its own I/O thread and its own workers, so a busy or attacked listener never
// starves another (the admin API and /health stay answerable while the federation port is under
// load). Every connection is bounded in time and bytes:
// - connections in total and per source address (beyond either, a new connection is closed at
//   once); accepting backs off when the process runs out of file descriptors;
// - the header: at most `max_header_bytes`, complete within `header_timeout` (`idle_timeout` for a
//   kept-alive connection's next request), else the connection is closed (431 when too large);
// - the body: refused before a byte of it is read when the head handler answers, when the declared
//   length is above `max_body_bytes` (413), or when the memory budget for bodies (in total and per
//   source) is spent (503); counted as it arrives, chunked or not, and cut off at the limit (413);
//   complete within `body_timeout` of the header, else 408;
// - request work: at most `max_queued` requests queued for or running on the workers, and
//   `max_queued_per_source` per source address; beyond that 503 with Retry-After.
// Requests on one connection are answered in order, one at a time (no pipelining).
//
// Threading: construct, start and stop from one thread. The head handler runs on the I/O thread
// and must not block; the handler runs on a worker thread and may block (e.g. waiting for the
// core thread). stop() closes every connection and waits for running handlers.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parley/node/config.h"
#include "parley/result.h"

namespace parley::node {

struct HttpRequest {
  std::string method;  // as sent, upper case: "GET", "PUT", ...
  std::string target;  // the request target exactly as sent (path and query)
  std::string source;  // the peer's IP address
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
  std::string body;                                          // empty for the head handler

  std::string_view path() const;   // the target up to '?'
  std::string_view query() const;  // after '?', or empty
  // The first header of that (lower-case) name, or nullptr.
  const std::string* header(std::string_view lower_name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // added as given

  static HttpResponse json(int status, std::string body);
  static HttpResponse text(int status, std::string body);
  // {"code": code, "message": message} with that status.
  static HttpResponse error(int status, const std::string& code, const std::string& message);
};

struct HttpLimits {
  std::size_t max_connections = 256;
  std::size_t max_connections_per_source = 16;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 64 * 1024;
  // Request bodies held in memory at once (reserved from the declared length, or the maximum for
  // a chunked body), across all connections and per source address.
  std::size_t body_budget_bytes = 64u << 20;
  std::size_t body_budget_per_source = 16u << 20;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds body_timeout{30'000};
  std::chrono::milliseconds idle_timeout{30'000};
  std::chrono::milliseconds write_timeout{30'000};
  std::size_t workers = 2;
  std::size_t max_queued = 64;
  std::size_t max_queued_per_source = 8;
};

// PEM files for a TLS listener (TLS 1.2 or later).
struct HttpTls {
  std::string cert_file;
  std::string key_file;
};

class HttpServer {
 public:
  // After the header, before any body byte: a response answers (or refuses) the request at once;
  // its body, if any, is then never read and the connection is closed after the answer.
  using HeadHandler = std::function<std::optional<HttpResponse>(const HttpRequest& head)>;
  // The complete request, on a worker thread.
  using Handler = std::function<HttpResponse(const HttpRequest& request)>;

  // `what` names the listener in logs and errors ("federation", "admin", "metrics").
  HttpServer(std::string what, HttpLimits limits);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds (HOST must be an IP address) and starts serving. "io" when the address is taken,
  // "bad_config" for an unusable address or TLS file.
  Status start(const HostPort& where, const std::optional<HttpTls>& tls, HeadHandler head,
               Handler handler);
  void stop();
  std::uint16_t port() const;

  // Counters (any thread).
  struct Stats {
    std::int64_t open_connections = 0;
    std::int64_t refused_connections = 0;  // over the total or per-source limit
    std::int64_t timeouts = 0;             // header or body not complete in time
    std::int64_t overloaded = 0;           // 503: no body budget or no worker slot
  };
  Stats stats() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Checks a Beast-parsed request head against `limits` the way the server does; for the fuzz
// target (tests/fuzz/http_request_fuzz.cpp). Returns the status the server would answer with
// before calling a handler (0 when the request would reach its handlers), and the parsed
// request.
int parse_http_request_for_fuzzing(std::string_view bytes, const HttpLimits& limits,
                                   HttpRequest& out);

}  // namespace parley::node
