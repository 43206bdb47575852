// `parleyd config check`: what an admin wants to know before (or while) a node runs — the
// configuration, the data directory's files and their modes, the listeners, the federation TLS
// certificate, the peers and the node's /.well-known/parley — each as one result with a hint.
//
// Reads only: nothing in the data directory is changed (the database is opened read-only), so it
// is safe against a running node; listeners of a running node are checked by connecting instead
// of binding. Network checks (peers, .well-known) can be skipped and time out after
// `timeout_seconds` each.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace parley::node {

struct CheckResult {
  enum class Level { kOk, kWarning, kProblem };
  std::string check;  // short family name: config, files, database, listeners, tls, peers, ...
  Level level = Level::kOk;
  std::string detail;  // what was found
  std::string hint;    // what to do about it (empty when ok)
};

const char* to_string(CheckResult::Level level);

struct CheckOptions {
  bool network = true;      // peers reachable, .well-known served
  int timeout_seconds = 5;  // per network request
};

// Runs every check on DATA_DIR, reporting each result to `progress` as it is known (long network
// checks show up one by one) and returning all of them.
std::vector<CheckResult> check_node(const std::string& data_dir, const CheckOptions& options,
                                    const std::function<void(const CheckResult&)>& progress);

}  // namespace parley::node
