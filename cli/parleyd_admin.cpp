#include "parleyd_admin.h"

#include <unistd.h>

#include <ctime>
#include <iostream>

#include "parley/node/config.h"
#include "parley/node/node.h"

namespace parley::cli {

namespace node = parley::node;
namespace http = web::http;
namespace json = web::json;

int exit_code_for(const std::string& code) {
  if (code == "not_found") return kNotFound;
  if (code == "conflict" || code == "exists" || code == "bad_request" || code == "bad_config")
    return kRefused;
  if (code == "unreachable") return kUnreachable;
  if (code == "locked") return kLocked;
  return kFail;
}

int fail(const Error& e) {
  std::cerr << "parleyd: " << e.message << "\n";
  return exit_code_for(e.code);
}

// A request to the running node's admin API. Returns the JSON body or an error with the node's
// code and message.
parley::Result<json::value> admin_call(const std::string& data_dir, const http::method& method,
                                       const std::string& path, const json::value& body) {
  auto config = node::load_config(node::DataPaths{data_dir}.config());
  if (!config.ok()) {
    return parley::make_error("unreachable", config.error().message);
  }
  auto token = node::read_admin_token(data_dir);
  if (!token.ok()) return parley::make_error("unreachable", token.error().message);
  const std::string base = "http://" + config->admin_listen.str();
  try {
    http::client::http_client_config cc;
    cc.set_timeout(std::chrono::seconds(30));
    http::client::http_client client(base, cc);
    http::http_request req(method);
    req.set_request_uri("/admin/v1" + path);
    req.headers().add("Authorization", "Bearer " + *token);
    if (!body.is_null()) req.set_body(body);
    const auto resp = client.request(req).get();
    const auto v = resp.extract_json(true).get();
    if (resp.status_code() >= 300) {
      const std::string code = v.has_field("code") ? v.at("code").as_string() : "internal";
      const std::string msg = v.has_field("message") ? v.at("message").as_string() : "error";
      return parley::make_error(code, msg);
    }
    return v;
  } catch (const std::exception& e) {
    return parley::make_error(
        "unreachable", "cannot reach the node's admin API at " + config->admin_listen.str() +
                           " (is `parleyd serve` running on " + data_dir + "?): " + e.what());
  }
}

std::string iso_time(std::int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

bool confirmed(const std::string& question, const std::string& expected, bool yes) {
  if (yes) return true;
  if (!::isatty(STDIN_FILENO)) {
    std::cerr << "parleyd: " << question << " needs --yes when stdin is not a terminal\n";
    return false;
  }
  std::cerr << question << "? Type " << expected << " to confirm: " << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  if (answer != expected) {
    std::cerr << "parleyd: not confirmed; nothing changed\n";
    return false;
  }
  return true;
}

}  // namespace parley::cli
