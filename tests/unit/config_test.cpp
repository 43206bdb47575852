// Node configuration checks that guard exposure (node/config.cpp).
#include <catch2/catch.hpp>

#include "parley/node/config.h"

using namespace parley::node;

TEST_CASE("loopback means a parsed loopback address, not a prefix") {
  for (const char* yes : {"127.0.0.1", "127.1.2.3", "127.255.255.255", "::1", "0:0:0:0:0:0:0:1",
                          "::ffff:127.0.0.1", "localhost"}) {
    INFO(yes);
    REQUIRE(is_loopback(yes));
  }
  for (const char* no :
       {"127.evil.example", "127.0.0.1.evil.example", "127.", "127", "0.0.0.0", "10.0.0.1",
        "128.0.0.1", "::", "::ffff:10.0.0.1", "localhost.evil", "127.0.0.01", "", " 127.0.0.1"}) {
    INFO(no);
    REQUIRE_FALSE(is_loopback(no));
  }
  NodeConfig c;
  c.name = "example.org";
  c.admin_listen = HostPort{"127.evil.example", 7422};
  REQUIRE(check_exposure(c).error().code == "bad_config");
  c.admin_listen = HostPort{"127.0.0.1", 7422};
  c.metrics_listen = HostPort{"127.evil.example", 7423};
  REQUIRE(check_exposure(c).error().code == "bad_config");
}
