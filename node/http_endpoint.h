// A cpprestsdk HTTP listener with a start/stop lifecycle that never throws: the admin API and the
// federation endpoint both serve through one. Private to node/.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <cpprest/http_listener.h>

#include "parley/result.h"

namespace parley::node {

class HttpEndpoint {
 public:
  using Handler = std::function<void(const web::http::http_request&)>;
  ~HttpEndpoint() { stop(); }

  // `what` names the endpoint in the error ("the admin API", "federation").
  Status start(const std::string& url, const std::string& what, Handler handler,
               const web::http::experimental::listener::http_listener_config& config = {}) {
    try {
      listener_ = std::make_unique<web::http::experimental::listener::http_listener>(url, config);
      listener_->support(std::move(handler));
      listener_->open().wait();
    } catch (const std::exception& e) {
      listener_.reset();
      return make_error("io", "cannot listen on " + url + " for " + what + ": " + e.what());
    }
    return ok_status();
  }

  void stop() {
    if (!listener_) return;
    try {
      listener_->close().wait();
    } catch (const std::exception&) {
    }
    listener_.reset();
  }

 private:
  std::unique_ptr<web::http::experimental::listener::http_listener> listener_;
};

}  // namespace parley::node
