#include <catch2/catch.hpp>

#include "parley/node/metrics.h"

using namespace parley::node;

TEST_CASE("label values are escaped as the exposition format requires") {
  CHECK(escape_label("plain.example") == "plain.example");
  CHECK(escape_label("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
}

TEST_CASE("the exposition has HELP/TYPE per family, cumulative buckets and per-peer samples") {
  Metrics m;
  m.logins_ok += 3;
  m.logins_failed += 1;
  m.count_error("not_found");
  m.count_error("not_found");
  m.federation_latency.observe(0.003);
  m.federation_latency.observe(0.2);
  m.federation_latency.observe(30);
  Snapshot s;
  s.connections = 7;
  s.peers.push_back({"b.example", 4, 1});
  s.peers.push_back({"we\"ird", 0, 0});
  const std::string text = render_metrics(m, s);
  CHECK(text.find("# TYPE parley_logins_total counter\n") != std::string::npos);
  CHECK(text.find("parley_logins_total{result=\"ok\"} 3\n") != std::string::npos);
  CHECK(text.find("parley_logins_total{result=\"failed\"} 1\n") != std::string::npos);
  CHECK(text.find("parley_client_connections 7\n") != std::string::npos);
  CHECK(text.find("parley_errors_total{code=\"not_found\"} 2\n") != std::string::npos);
  CHECK(text.find("parley_peer_queued_events{peer=\"b.example\"} 4\n") != std::string::npos);
  CHECK(text.find("parley_peer_queued_events{peer=\"we\\\"ird\"} 0\n") != std::string::npos);
  // 0.003 falls in le=0.005; 0.2 first in le=0.25; 30 only in +Inf.
  CHECK(text.find("parley_federation_transaction_seconds_bucket{le=\"0.005\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("parley_federation_transaction_seconds_bucket{le=\"0.1\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("parley_federation_transaction_seconds_bucket{le=\"0.25\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("parley_federation_transaction_seconds_bucket{le=\"10\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("parley_federation_transaction_seconds_bucket{le=\"+Inf\"} 3\n") !=
        std::string::npos);
  CHECK(text.find("parley_federation_transaction_seconds_count 3\n") != std::string::npos);
  CHECK(text.find("parley_federation_transaction_seconds_sum 30.203") != std::string::npos);
  // Every sample line follows a TYPE line of its family.
  std::size_t families = 0, pos = 0;
  while ((pos = text.find("# TYPE ", pos)) != std::string::npos) {
    ++families;
    ++pos;
  }
  CHECK(families >= 14);
}
