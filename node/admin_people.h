// Admin API routes for people and abuse reports (spec/admin-api.md "People" and "Abuse
// reports"): sessions, kick, deactivate/reactivate, erase, retired names, send limits, reports.
// Also what every admin route shares: the request/answer pair and the error reply. Private to
// node/; handlers run on the admin listener's workers and reach the Core only through
// `run_on_core`.
#pragma once

#include <cpprest/json.h>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "http_server.h"
#include "parley/result.h"

namespace parley::node {

class Core;
using RunOnCore = std::function<void(std::function<void(Core&)>)>;

// One admin request and the answer a handler gives it (at most one: the first reply counts).
class AdminExchange {
 public:
  explicit AdminExchange(const HttpRequest& request) : request_(request) {}
  const std::string& method() const { return request_.method; }
  std::string path() const { return std::string(request_.path()); }
  std::string query() const { return std::string(request_.query()); }
  // The body as JSON (null when empty); throws web::json::json_exception when it is not JSON.
  web::json::value json() const {
    if (request_.body.empty()) return web::json::value::null();
    return web::json::value::parse(request_.body);
  }
  void reply(int status, const web::json::value& body) const {
    if (!response_) response_ = HttpResponse::json(status, body.serialize());
  }
  void reply(int status, const std::string& text) const {
    if (!response_) response_ = HttpResponse::text(status, text);
  }
  // The answer, or 500 when a handler gave none.
  HttpResponse take() const {
    return response_ ? std::move(*response_)
                     : HttpResponse::error(500, "internal", "the request got no answer");
  }

 private:
  const HttpRequest& request_;
  mutable std::optional<HttpResponse> response_;
};

// The HTTP status of an error code (spec/admin-api.md "Errors").
inline int admin_status_for(const std::string& code) {
  if (code == "bad_request") return 400;
  if (code == "unauthorized") return 401;
  if (code == "not_found") return 404;
  if (code == "conflict" || code == "exists") return 409;
  if (code == "disk_full") return 507;
  if (code == "read_only" || code == "io_error") return 503;
  return 500;
}

inline void reply_error(const AdminExchange& req, const Error& e) {
  web::json::value body;
  body["code"] = web::json::value::string(e.code);
  body["message"] = web::json::value::string(e.message);
  req.reply(admin_status_for(e.code), body);
}

// Answers `req` when `parts` (the decoded path after /admin/v1) is one of these routes and
// returns true; otherwise returns false and leaves the request to the caller.
bool route_people(const AdminExchange& req, const std::vector<std::string>& parts,
                  const RunOnCore& run_on_core);

}  // namespace parley::node
