// Fuzz target: the node's HTTP request parsing as its listeners use it (node/http_server.h) — the
// request line, headers, declared and chunked bodies, upgrade requests — under two sets of
// limits, then the federation Authorization header of whatever parsed. Invariants: a request
// that reaches a handler never carries a body over the limit, and its accessors stay inside it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "http_server.h"
#include "parley/federation/signing.h"

namespace {

void check(std::string_view bytes, std::size_t max_body, std::size_t max_header) {
  parley::node::HttpLimits limits;
  limits.max_body_bytes = max_body;
  limits.max_header_bytes = max_header;
  parley::node::HttpRequest request;
  const int status = parley::node::parse_http_request_for_fuzzing(bytes, limits, request);
  if (status != 0) {
    if (status != 400 && status != 408 && status != 413 && status != 431) std::abort();
    return;
  }
  if (request.body.size() > max_body) std::abort();
  if (request.path().size() > request.target.size()) std::abort();
  if (request.query().size() > request.target.size()) std::abort();
  if (const std::string* auth = request.header("authorization")) {
    (void)parley::federation::parse_authorization(*auth);
  }
  (void)request.header("content-length");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  check(bytes, 8 * 1024, 16 * 1024);
  check(bytes, 0, 1024);
  return 0;
}
