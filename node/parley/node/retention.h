// Retention: how long the node keeps stored ciphertext (1:1 messages) and delivered stream
// entries, and the bounded purge that removes what is past its lifetime (spec/storage.md,
// "Retention"). The policy is a node default plus per-conversation overrides, kept in the
// database (node_meta 'retention_default_seconds' and the retention table); a lifetime of 0
// means forever.
//
// A purge run goes in bounded steps so that it never holds the database for long: messages
// conversation by conversation, then stream entries user by user, then an incremental vacuum
// that gives freed pages back to the file system. Each step is one short transaction.
//
// Threading: a Retention belongs to the thread that owns its Database connection (the node's
// core thread). Errors are the database's.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "parley/result.h"

namespace parley::store {
class Database;
}

namespace parley::node {

struct RetentionOverride {
  std::string conv;
  std::int64_t lifetime_seconds = 0;  // 0: forever
  std::int64_t set_ms = 0;
};

struct RetentionPolicy {
  std::int64_t default_seconds = 0;  // 0: forever
  std::vector<RetentionOverride> overrides;
};

struct PurgeCounts {
  std::int64_t messages = 0;        // 1:1 message rows (ciphertext)
  std::int64_t stream_entries = 0;  // delivered stream entries
  std::int64_t pages_freed = 0;     // database pages given back to the file system
};

struct PurgeProgress {
  PurgeCounts counts;  // of the current (or just finished) run
  std::string phase;   // messages | stream | vacuum | done
  bool done = false;   // the run finished with this step
  std::int64_t started_ms = 0;
  std::int64_t finished_ms = 0;  // when done
};

class Retention {
 public:
  explicit Retention(store::Database& db);

  Result<RetentionPolicy> policy();
  // The node default; 0 keeps everything forever.
  Status set_default(std::int64_t lifetime_seconds, std::int64_t now_ms);
  // A conversation's own lifetime (0: forever), or back to the node default with nullopt.
  // not_found for a conversation the node does not hold.
  Status set_override(const std::string& conv, std::optional<std::int64_t> lifetime_seconds,
                      std::int64_t now_ms);

  // What a purge at `now_ms` would remove (pages_freed stays 0): the dry run.
  Result<PurgeCounts> eligible(std::int64_t now_ms);

  // Runs one bounded step (at most `limit` rows or pages) of the current purge run, starting a
  // run if none is under way. A run's cut-off times are fixed when it starts.
  Result<PurgeProgress> step(std::int64_t now_ms, int limit);
  bool running() const { return run_.has_value(); }
  // The last run that finished, if any since start.
  const std::optional<PurgeProgress>& last_run() const { return last_; }

 private:
  struct Run {
    PurgeProgress progress;
    std::int64_t now_ms = 0;
    RetentionPolicy policy;
    std::string after_conv;       // messages phase: conversations up to this id are done
    std::string prefix_conv;      // the conversation whose expired prefix ends before
    std::int64_t prefix_end = 0;  // this cseq
    std::int64_t after_user = 0;  // stream phase: the user being read (or the next one)
    std::int64_t after_seq = 0;   // and the last of its entries read
  };
  std::int64_t lifetime_of(const RetentionPolicy& p, const std::string& conv) const;
  Result<int> purge_messages(Run& run, int limit, bool count_only);
  Result<int> purge_stream(Run& run, int limit, bool count_only);
  Result<int> vacuum(int pages);

  store::Database& db_;
  std::optional<Run> run_;
  std::optional<PurgeProgress> last_;
};

// "30d", "12h", "90m", "45s", a plain number of seconds, or "forever" (0). Errors: bad_request.
Result<std::int64_t> parse_lifetime(const std::string& text);
// The shortest of those forms that is exact ("30d", "36h", "forever").
std::string format_lifetime(std::int64_t seconds);

}  // namespace parley::node
