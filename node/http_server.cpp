#include "http_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace parley::node {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

std::string_view HttpRequest::path() const {
  const std::string_view t(target);
  return t.substr(0, t.find('?'));
}

std::string_view HttpRequest::query() const {
  const auto q = target.find('?');
  return q == std::string::npos ? std::string_view() : std::string_view(target).substr(q + 1);
}

const std::string* HttpRequest::header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return &value;
  }
  return nullptr;
}

HttpResponse HttpResponse::json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

namespace {

// JSON string escaping for error bodies (codes and messages are ours, but may quote input).
std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (const unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (c < 0x20 || c >= 0x7f) {  // control bytes, and anything not ASCII: never invalid JSON
          static const char* kHex = "0123456789abcdef";
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

}  // namespace

HttpResponse HttpResponse::error(int status, const std::string& code, const std::string& message) {
  return json(status,
              "{\"code\":" + json_string(code) + ",\"message\":" + json_string(message) + "}");
}

namespace {

using Parser = bhttp::request_parser<bhttp::string_body>;

constexpr auto kAcceptBackoff = std::chrono::milliseconds(250);
// How long, and for how many bytes, a closing connection reads and drops what still arrives.
constexpr auto kLinger = std::chrono::seconds(2);
constexpr std::size_t kLingerBytes = 8u << 20;
constexpr std::int64_t kWarnEveryMs = 10'000;

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void fill_head(const Parser& parser, HttpRequest& out) {
  const auto& m = parser.get();
  out.method = std::string(m.method_string());
  out.target = std::string(m.target());
  out.headers.clear();
  for (const auto& f : m) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers.emplace_back(std::move(name), std::string(f.value()));
  }
}

// What the server answers after the header before asking the head handler: 413 for a declared
// body over the limit, else 0.
int precheck(const Parser& parser, const HttpLimits& limits) {
  const auto length = parser.content_length();
  if (length && *length > limits.max_body_bytes) return 413;
  return 0;
}

// The body this request may hold in memory: its declared length, or the maximum when chunked.
std::size_t body_reservation(const Parser& parser, const HttpLimits& limits) {
  if (const auto length = parser.content_length()) return static_cast<std::size_t>(*length);
  return parser.chunked() ? limits.max_body_bytes : 0;
}

}  // namespace

// What every connection of one server shares. Lives on the server's I/O thread, except the
// atomics (read by stats()) and `workers_`.
class HttpServer::Impl {
 public:
  Impl(std::string what, HttpLimits limits) : what_(std::move(what)), limits_(limits) {}
  ~Impl();

  Status start(const HostPort& where, const std::optional<HttpTls>& tls, HeadHandler head,
               Handler handler);
  void stop();
  std::uint16_t port() const { return port_; }
  Stats stats() const {
    return {open_.load(), refused_.load(), timeouts_.load(), overloaded_.load()};
  }

  // Per source address: connections, queued work and reserved body bytes.
  struct Source {
    std::size_t connections = 0;
    std::size_t queued = 0;
    std::size_t body_bytes = 0;
  };

  // I/O thread.
  bool reserve_body(const std::string& source, std::size_t bytes) {
    auto& s = sources_[source];
    if (body_bytes_ + bytes > limits_.body_budget_bytes ||
        s.body_bytes + bytes > limits_.body_budget_per_source) {
      return false;
    }
    body_bytes_ += bytes;
    s.body_bytes += bytes;
    return true;
  }
  void release_body(const std::string& source, std::size_t bytes) {
    body_bytes_ -= bytes;
    auto it = sources_.find(source);
    if (it != sources_.end()) {
      it->second.body_bytes -= bytes;
      forget_if_idle(it);
    }
  }
  bool reserve_work(const std::string& source) {
    auto& s = sources_[source];
    if (queued_ >= limits_.max_queued || s.queued >= limits_.max_queued_per_source) return false;
    ++queued_;
    ++s.queued;
    return true;
  }
  void release_work(const std::string& source) {
    --queued_;
    auto it = sources_.find(source);
    if (it != sources_.end()) {
      --it->second.queued;
      forget_if_idle(it);
    }
  }
  void connection_closed(const std::string& source) {
    --open_;
    auto it = sources_.find(source);
    if (it != sources_.end()) {
      --it->second.connections;
      forget_if_idle(it);
    }
  }
  void count_timeout() { ++timeouts_; }
  void count_overloaded() { ++overloaded_; }

  // Runs the handler on a worker; `done` is posted back to the I/O thread with the answer.
  void run_handler(HttpRequest request, std::function<void(HttpResponse)> done) {
    asio::post(*workers_, [self = this, request = std::move(request),
                           done = std::move(done)]() mutable {
      HttpResponse response;
      try {
        response = self->handler_(request);
      } catch (const std::exception& e) {
        spdlog::warn("event=http_handler_failed listener={} reason=\"{}\"", self->what_, e.what());
        response = HttpResponse::error(500, "internal", "the request could not be processed");
      }
      asio::post(self->io_, [done = std::move(done), response = std::move(response)]() mutable {
        done(std::move(response));
      });
    });
  }

  const std::string& what() const { return what_; }
  const HttpLimits& limits() const { return limits_; }
  const HeadHandler& head_handler() const { return head_; }
  asio::io_context& io() { return io_; }
  bool stopping() const { return stopping_; }

  // Live connections, so stop() can close them (I/O thread).
  std::list<std::function<void()>>::iterator track(std::function<void()> closer) {
    return closers_.insert(closers_.end(), std::move(closer));
  }
  void untrack(std::list<std::function<void()>>::iterator it) {
    if (!stopping_) closers_.erase(it);  // stop() took the list
  }

 private:
  void accept();
  void on_accept(const boost::system::error_code& ec, tcp::socket socket);
  void forget_if_idle(std::unordered_map<std::string, Source>::iterator it) {
    const auto& s = it->second;
    if (s.connections == 0 && s.queued == 0 && s.body_bytes == 0) sources_.erase(it);
  }

  std::string what_;
  HttpLimits limits_;
  HeadHandler head_;
  Handler handler_;
  asio::io_context io_{1};
  tcp::acceptor acceptor_{io_};
  asio::steady_timer accept_retry_{io_};
  std::optional<ssl::context> tls_;
  std::unique_ptr<asio::thread_pool> workers_;
  std::thread thread_;
  std::uint16_t port_ = 0;
  bool stopping_ = false;  // I/O thread
  std::unordered_map<std::string, Source> sources_;
  std::size_t body_bytes_ = 0;
  std::size_t queued_ = 0;
  std::list<std::function<void()>> closers_;
  std::int64_t last_accept_warning_ms_ = 0;
  std::atomic<std::int64_t> open_{0}, refused_{0}, timeouts_{0}, overloaded_{0};
};

namespace {

// One connection: read a header, let the head handler look at it, read the body, run the
// handler on a worker, write the answer; again while the client keeps the connection alive.
// `Stream` is beast::tcp_stream or beast::ssl_stream<beast::tcp_stream>.
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(HttpServer::Impl* server, Stream stream, std::string source)
      : server_(server),
        stream_(std::move(stream)),
        source_(std::move(source)),
        deadline_(beast::get_lowest_layer(stream_).get_executor()) {}

  void start() {
    auto self = this->shared_from_this();
    tracked_ = server_->track([weak = this->weak_from_this()] {
      if (auto s = weak.lock()) s->close();
    });
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      read_head();
    } else {
      lowest().expires_after(server_->limits().header_timeout);
      stream_.async_handshake(ssl::stream_base::server,
                              [self](const boost::system::error_code& ec) {
                                if (ec) {
                                  spdlog::debug(
                                      "event=http_tls_failed listener={} source={} "
                                      "reason=\"{}\"",
                                      self->server_->what(), self->source_, ec.message());
                                  return self->close();
                                }
                                self->read_head();
                              });
    }
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    deadline_.cancel();
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().close();
    if (reserved_) server_->release_body(source_, reserved_);
    reserved_ = 0;
    server_->untrack(tracked_);
    server_->connection_closed(source_);
  }

 private:
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  void read_head() {
    if (closed_) return;
    const auto& limits = server_->limits();
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser_->body_limit(limits.max_body_bytes);
    lowest().expires_after(first_ ? limits.header_timeout : limits.idle_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = this->shared_from_this()](const boost::system::error_code& ec,
                                                               std::size_t) { self->on_head(ec); });
  }

  void on_head(const boost::system::error_code& ec) {
    if (closed_) return;
    if (ec) {
      if (ec == bhttp::error::header_limit) {
        return respond(HttpResponse::error(431, "header_too_large", "request header too large"),
                       true);
      }
      if (ec == bhttp::error::body_limit) {  // a declared length over the limit
        return respond(HttpResponse::error(413, "payload_too_large", "request body too large"),
                       true);
      }
      if (ec == beast::error::timeout) {
        // A quiet kept-alive connection, or a header that arrives too slowly: closed (the
        // stream's timeout has closed the socket already).
        server_->count_timeout();
      } else if (ec != bhttp::error::end_of_stream && ec != asio::error::eof &&
                 ec != asio::error::operation_aborted) {
        spdlog::debug("event=http_bad_request listener={} source={} reason=\"{}\"", server_->what(),
                      source_, ec.message());
        if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category()) {
          return respond(HttpResponse::error(400, "bad_request", "malformed HTTP request"), true);
        }
      }
      return close();
    }
    fill_head(*parser_, request_);
    request_.source = source_;
    request_.body.clear();
    const bool has_body = parser_->chunked() || parser_->content_length().value_or(0) > 0;
    if (const int status = precheck(*parser_, server_->limits()); status != 0) {
      return respond(HttpResponse::error(status, "payload_too_large", "request body too large"),
                     true);
    }
    if (auto answer = server_->head_handler()(request_)) {
      return respond(std::move(*answer), has_body);
    }
    if (!has_body) return on_body({});
    const std::size_t want = body_reservation(*parser_, server_->limits());
    if (!server_->reserve_body(source_, want)) {
      server_->count_overloaded();
      auto busy = HttpResponse::error(503, "unavailable", "too many request bodies in progress");
      busy.headers.emplace_back("Retry-After", "1");
      return respond(std::move(busy), true);
    }
    reserved_ = want;
    // The body's deadline cancels the read rather than closing the socket (as the stream's own
    // timeout would), so the client still gets its 408.
    lowest().expires_never();
    deadline_.expires_after(server_->limits().body_timeout);
    deadline_.async_wait([self = this->shared_from_this()](const boost::system::error_code& e) {
      if (e || self->closed_) return;
      self->body_timed_out_ = true;
      boost::system::error_code ignored;
      self->lowest().socket().cancel(ignored);
    });
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](const boost::system::error_code& ec,
                                                        std::size_t) { self->on_body(ec); });
  }

  void on_body(const boost::system::error_code& ec) {
    if (closed_) return;
    deadline_.cancel();
    if (body_timed_out_) {
      server_->count_timeout();
      return respond(HttpResponse::error(408, "request_timeout", "request body too slow"), true);
    }
    if (ec == bhttp::error::body_limit) {
      return respond(HttpResponse::error(413, "payload_too_large", "request body too large"), true);
    }
    if (ec) return close();
    request_.body = std::move(parser_->get().body());
    keep_alive_ = parser_->get().keep_alive();
    if (!server_->reserve_work(source_)) {
      server_->count_overloaded();
      auto busy = HttpResponse::error(503, "unavailable", "too many requests in progress");
      busy.headers.emplace_back("Retry-After", "1");
      return respond(std::move(busy), false);
    }
    server_->run_handler(std::move(request_),
                         [self = this->shared_from_this()](HttpResponse response) {
                           self->server_->release_work(self->source_);
                           self->respond(std::move(response), false);
                         });
  }

  // Writes `r`; closes afterwards when `close_after` or the client asked for it.
  void respond(HttpResponse r, bool close_after) {
    if (closed_) return;
    if (reserved_) {
      server_->release_body(source_, reserved_);
      reserved_ = 0;
    }
    const unsigned version = parser_ && parser_->is_header_done() ? parser_->get().version() : 11;
    const bool keep = !close_after && !server_->stopping() && parser_ &&
                      parser_->is_header_done() && parser_->get().keep_alive();
    response_ = std::make_unique<bhttp::response<bhttp::string_body>>(
        static_cast<bhttp::status>(r.status), version);
    response_->set(bhttp::field::server, "parleyd");
    if (!r.content_type.empty()) response_->set(bhttp::field::content_type, r.content_type);
    for (auto& [name, value] : r.headers) response_->set(name, value);
    response_->body() = std::move(r.body);
    response_->keep_alive(keep);
    response_->prepare_payload();
    lowest().expires_after(server_->limits().write_timeout);
    bhttp::async_write(
        stream_, *response_,
        [self = this->shared_from_this(), keep](const boost::system::error_code& ec, std::size_t) {
          self->response_.reset();
          if (ec || !keep) return self->finish();
          self->first_ = false;
          self->read_head();
        });
  }

  // Ends the connection after the last answer: a TLS close_notify (bounded), then the socket.
  // A plain connection lingers first: what the client still sends (the body of a request that
  // was refused from its header) is read and dropped for a moment, so the client reads the
  // answer instead of a reset.
  void finish() {
    if (closed_) return;
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      boost::system::error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
      lowest().expires_after(kLinger);
      linger(0);
    } else {
      lowest().expires_after(std::chrono::seconds(2));
      stream_.async_shutdown(
          [self = this->shared_from_this()](const boost::system::error_code&) { self->close(); });
    }
  }

  void linger(std::size_t dropped) {
    if (closed_ || dropped > kLingerBytes) return close();
    buffer_.clear();
    lowest().async_read_some(buffer_.prepare(64 * 1024),
                             [self = this->shared_from_this(), dropped](
                                 const boost::system::error_code& ec, std::size_t n) {
                               if (ec) return self->close();
                               self->linger(dropped + n);
                             });
  }

  HttpServer::Impl* server_;  // outlives every session (stop() ends them)
  Stream stream_;
  std::string source_;
  beast::flat_buffer buffer_;
  std::optional<Parser> parser_;
  HttpRequest request_;
  std::unique_ptr<bhttp::response<bhttp::string_body>> response_;
  asio::steady_timer deadline_;  // the body's
  bool body_timed_out_ = false;
  std::size_t reserved_ = 0;
  bool first_ = true;
  bool keep_alive_ = false;
  bool closed_ = false;
  std::list<std::function<void()>>::iterator tracked_;
};

}  // namespace

Status HttpServer::Impl::start(const HostPort& where, const std::optional<HttpTls>& tls,
                               HeadHandler head, Handler handler) {
  head_ = std::move(head);
  handler_ = std::move(handler);
  if (tls) {
    try {
      tls_.emplace(ssl::context::tls_server);
      tls_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                        ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                        ssl::context::single_dh_use);
      tls_->use_certificate_chain_file(tls->cert_file);
      tls_->use_private_key_file(tls->key_file, ssl::context::pem);
    } catch (const std::exception& e) {
      tls_.reset();
      return make_error("bad_config", what_ + " TLS certificate " + tls->cert_file + " / key " +
                                          tls->key_file + ": " + e.what());
    }
  }
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(where.host, ec);
  if (ec) {
    return make_error("bad_config",
                      what_ + " listen address '" + where.host + "' is not an IP address");
  }
  const tcp::endpoint ep(address, where.port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return make_error("io",
                      "cannot listen on " + where.str() + " for " + what_ + ": " + ec.message());
  }
  port_ = acceptor_.local_endpoint(ec).port();
  workers_ = std::make_unique<asio::thread_pool>(std::max<std::size_t>(limits_.workers, 1));
  accept();
  thread_ = std::thread([this] { io_.run(); });
  return ok_status();
}

void HttpServer::Impl::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

void HttpServer::Impl::on_accept(const boost::system::error_code& ec, tcp::socket socket) {
  if (stopping_ || !acceptor_.is_open()) return;
  if (ec) {
    // Out of file descriptors (or memory): wait a little instead of spinning on an accept that
    // fails at once; the waiting connections stay in the kernel's backlog.
    const auto now = steady_ms();
    if (now - last_accept_warning_ms_ >= kWarnEveryMs) {
      last_accept_warning_ms_ = now;
      spdlog::warn("event=accept_failed listener={} reason=\"{}\" (retrying in {} ms)", what_,
                   ec.message(), kAcceptBackoff.count());
    }
    accept_retry_.expires_after(kAcceptBackoff);
    accept_retry_.async_wait([this](const boost::system::error_code& e) {
      if (!e && !stopping_) accept();
    });
    return;
  }
  boost::system::error_code rec;
  const auto remote = socket.remote_endpoint(rec);
  std::string source = rec ? "unknown" : remote.address().to_string();
  auto& s = sources_[source];
  if (static_cast<std::size_t>(open_.load()) >= limits_.max_connections ||
      s.connections >= limits_.max_connections_per_source) {
    ++refused_;
    const auto now = steady_ms();
    if (now - last_accept_warning_ms_ >= kWarnEveryMs) {
      last_accept_warning_ms_ = now;
      spdlog::warn("event=http_connection_refused listener={} source={} reason={}", what_, source,
                   s.connections >= limits_.max_connections_per_source ? "per_source_limit"
                                                                       : "max_connections");
    }
    if (s.connections == 0 && s.queued == 0 && s.body_bytes == 0) sources_.erase(source);
    boost::system::error_code ignored;
    socket.close(ignored);
    return accept();
  }
  ++s.connections;
  ++open_;
  socket.set_option(tcp::no_delay(true), rec);
  if (tls_) {
    std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
        this, beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), *tls_),
        std::move(source))
        ->start();
  } else {
    std::make_shared<Session<beast::tcp_stream>>(this, beast::tcp_stream(std::move(socket)),
                                                 std::move(source))
        ->start();
  }
  accept();
}

void HttpServer::Impl::stop() {
  if (!thread_.joinable()) return;
  asio::post(io_, [this] {
    stopping_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    accept_retry_.cancel();
    // Closing removes the entry: take them all first.
    auto closers = std::move(closers_);
    closers_.clear();
    for (auto& close : closers) close();
  });
  // Handlers still running finish (they may wait for the core thread, which still runs); their
  // answers go nowhere. What is left in the I/O queue (sessions of closed connections) is
  // destroyed with the io_context.
  workers_->join();
  io_.stop();
  thread_.join();
}

HttpServer::Impl::~Impl() { stop(); }

HttpServer::HttpServer(std::string what, HttpLimits limits)
    : impl_(std::make_unique<Impl>(std::move(what), limits)) {}

HttpServer::~HttpServer() { stop(); }

Status HttpServer::start(const HostPort& where, const std::optional<HttpTls>& tls, HeadHandler head,
                         Handler handler) {
  return impl_->start(where, tls, std::move(head), std::move(handler));
}

void HttpServer::stop() { impl_->stop(); }

std::uint16_t HttpServer::port() const { return impl_->port(); }

HttpServer::Stats HttpServer::stats() const { return impl_->stats(); }

int parse_http_request_for_fuzzing(std::string_view bytes, const HttpLimits& limits,
                                   HttpRequest& out) {
  Parser parser;
  parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
  parser.body_limit(limits.max_body_bytes);
  parser.eager(false);
  boost::system::error_code ec;
  std::size_t used = 0;
  // The header first, as the server reads it.
  while (!parser.is_header_done()) {
    const auto n = parser.put(asio::buffer(bytes.data() + used, bytes.size() - used), ec);
    used += n;
    if (ec == bhttp::error::need_more && used == bytes.size()) return 408;
    if (ec && ec != bhttp::error::need_more) {
      if (ec == bhttp::error::body_limit) return 413;
      return ec == bhttp::error::header_limit ? 431 : 400;
    }
    if (n == 0 && !parser.is_header_done()) return 408;
  }
  fill_head(parser, out);
  if (const int status = precheck(parser, limits); status != 0) return status;
  parser.eager(true);
  while (!parser.is_done()) {
    const auto n = parser.put(asio::buffer(bytes.data() + used, bytes.size() - used), ec);
    used += n;
    if (ec == bhttp::error::body_limit) return 413;
    if (ec == bhttp::error::need_more) {
      // The parser wants bytes the input does not have (all of it, or the rest of a chunk
      // header): the connection would wait for them until its deadline.
      if (used == bytes.size() || n == 0) {
        parser.put_eof(ec);
        if (ec || !parser.is_done()) return 408;
        break;
      }
      continue;
    }
    if (ec) return 400;
    if (n == 0) return 400;
  }
  out.body = parser.get().body();
  return 0;
}

}  // namespace parley::node
