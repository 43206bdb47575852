// `parley group ...` and `parley history GROUP`: groups are replicated conversations on the
// nodes (spec/ordering.md); their messages are end-to-end encrypted here (spec/crypto.md).
#pragma once

#include <string>
#include <vector>

#include "parley/result.h"

namespace parley::client {
class E2e;
class Profile;
class Session;
}  // namespace parley::client

namespace parley::cli {

struct GroupArgs {
  // create add remove leave role members send edit recall react read list history
  std::string action;
  std::string group;  // a group id ("g:…") or a name unique among the user's groups
  std::string name, address, role, text;
  std::string event;  // the event an edit, recall, reaction or read marker is about
  std::vector<std::string> members;
  bool json = false;
};

// Runs one group command; returns the exit code.
int run_group(client::Session& s, client::E2e& e2e, client::Profile& profile,
              const GroupArgs& args);

// The id of GROUP (an id as is, or the one group of the user with that name).
Result<std::string> resolve_group(client::Session& s, const std::string& group);
// The full id of the event EVENT names in `conv` (an id or a unique prefix of one).
Result<std::string> resolve_group_event(client::Session& s, const std::string& conv,
                                        const std::string& event);

}  // namespace parley::cli
