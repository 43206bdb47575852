// Admin API routes for people and abuse reports (spec/admin-api.md "People" and "Abuse
// reports"): sessions, kick, deactivate/reactivate, erase, retired names, send limits, reports.
// Also the error reply every admin route uses. Private to node/; handlers run on cpprestsdk's
// threads and reach the Core only through `run_on_core`.
#pragma once

#include <cpprest/http_msg.h>
#include <cpprest/json.h>
#include <functional>
#include <string>
#include <vector>

#include "parley/result.h"

namespace parley::node {

class Core;
using RunOnCore = std::function<void(std::function<void(Core&)>)>;

// The HTTP status of an error code (spec/admin-api.md "Errors").
inline web::http::status_code admin_status_for(const std::string& code) {
  using sc = web::http::status_codes;
  if (code == "bad_request") return sc::BadRequest;
  if (code == "unauthorized") return sc::Unauthorized;
  if (code == "not_found") return sc::NotFound;
  if (code == "conflict" || code == "exists") return sc::Conflict;
  if (code == "disk_full") return 507;
  if (code == "read_only" || code == "io_error") return sc::ServiceUnavailable;
  return sc::InternalError;
}

inline void reply_error(const web::http::http_request& req, const Error& e) {
  web::json::value body;
  body["code"] = web::json::value::string(e.code);
  body["message"] = web::json::value::string(e.message);
  req.reply(admin_status_for(e.code), body).wait();
}

// Answers `req` when `parts` (the decoded path after /admin/v1) is one of these routes and
// returns true; otherwise returns false and leaves the request to the caller.
bool route_people(const web::http::http_request& req, const std::vector<std::string>& parts,
                  const RunOnCore& run_on_core);

}  // namespace parley::node
