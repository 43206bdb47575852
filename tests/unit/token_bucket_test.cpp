// Token buckets of the send rate limits (node/parley/node/token_bucket.h): burst, refill at the
// rate, the wait it announces, per-key independence, limit changes and bounded memory.
#include <catch2/catch.hpp>

#include "parley/node/token_bucket.h"

using parley::node::TokenBuckets;

TEST_CASE("a bucket starts full, empties, and says how long until the next token") {
  TokenBuckets b;
  const TokenBuckets::Limit limit{60, 3};  // one per second, three at once
  std::int64_t now = 1'000'000;
  for (int i = 0; i < 3; ++i) REQUIRE(b.take(7, limit, now) == 0);
  const auto wait = b.take(7, limit, now);
  CHECK(wait == 1000);
  CHECK(b.take(7, limit, now + 500) == 500);  // refused takes cost nothing
  CHECK(b.take(7, limit, now + 999) > 0);
  CHECK(b.take(7, limit, now + 1000) == 0);  // exactly when it said
  CHECK(b.take(7, limit, now + 1000) == 1000);
  // A long pause refills to the burst, never beyond.
  now += 3'600'000;
  for (int i = 0; i < 3; ++i) REQUIRE(b.take(7, limit, now) == 0);
  CHECK(b.take(7, limit, now) > 0);
}

TEST_CASE("keys are independent; zero per minute is unlimited; lower limits apply at once") {
  TokenBuckets b;
  const TokenBuckets::Limit one{1, 1};
  REQUIRE(b.take(1, one, 0) == 0);
  CHECK(b.take(1, one, 0) == 60000);
  CHECK(b.take(2, one, 0) == 0);  // another user has their own bucket
  for (int i = 0; i < 10000; ++i) REQUIRE(b.take(3, TokenBuckets::Limit{0, 1}, 0) == 0);
  // A user with 100 tokens whose limit drops to a burst of 2 keeps only 2.
  const TokenBuckets::Limit wide{600, 100}, narrow{600, 2};
  REQUIRE(b.take(4, wide, 0) == 0);
  REQUIRE(b.take(4, narrow, 0) == 0);
  REQUIRE(b.take(4, narrow, 0) == 0);
  CHECK(b.take(4, narrow, 0) == 100);  // 600 per minute: one every 100 ms
  b.forget(4);
  CHECK(b.take(4, narrow, 0) == 0);
}

TEST_CASE("memory stays bounded: refilled buckets are dropped first") {
  TokenBuckets b(100);
  const TokenBuckets::Limit limit{60, 5};
  for (std::int64_t k = 0; k < 100; ++k) REQUIRE(b.take(k, limit, 0) == 0);
  REQUIRE(b.size() == 100);
  // Much later every bucket is full again: a new key prunes them.
  REQUIRE(b.take(1000, limit, 10'000'000) == 0);
  CHECK(b.size() == 1);
  // Under a flood of new keys with nothing to prune it forgets everything rather than grow.
  for (std::int64_t k = 2000; k < 2300; ++k) REQUIRE(b.take(k, limit, 10'000'000) == 0);
  CHECK(b.size() <= 100);
}
