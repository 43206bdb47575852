// Blocks inside groups (spec/client-protocol.md sections 9 and 12): a user cannot be put into a
// group by someone they block, and what a blocked member writes there is marked hidden for them
// (delivered all the same: it may carry the chain key its sender's later messages need). Group
// membership is state every member's node shares, so a refused add cannot be hidden from the
// adder as a refused friend request is: on this node it is answered `not_allowed` naming no
// reason; an add made on another node (which cannot know the block) is answered by this node
// with the user's own `leave`, before anything of the group reaches the user's devices.
#include <spdlog/spdlog.h>

#include "core_internal.h"
#include "parley/address.h"
#include "parley/conv/replica.h"
#include "parley/node/conv_store.h"

namespace parley::node {

bool Core::blocked_content(conv::Kind kind) {
  return kind == conv::Kind::kMessage || kind == conv::Kind::kEdit || kind == conv::Kind::kRecall ||
         kind == conv::Kind::kReaction;
}

Result<bool> Core::local_blocks(const std::string& address, const std::string& other) {
  const auto a = wire::parse_address(address);
  if (!a.ok() || a->domain != config_.name) return false;
  PARLEY_ASSIGN_OR_RETURN(user, find_user(a->local));
  if (!user) return false;
  PARLEY_ASSIGN_OR_RETURN(state, relation(user->id, other));
  return state == "blocked";
}

Status Core::check_group_add(const std::string& adder, const std::string& target) {
  PARLEY_ASSIGN_OR_RETURN(blocked, local_blocks(target, adder));
  if (blocked) return make_error("not_allowed", "cannot add " + target + " to this group");
  return ok_status();
}

Result<std::vector<std::string>> Core::blocked_adds(
    const conv::Replica& r, std::size_t from, const std::map<std::string, conv::Member>& before) {
  std::vector<std::string> out;
  const auto members = r.members();
  for (std::size_t i = from; i < r.log().size(); ++i) {
    const conv::Event& e = r.log()[i];
    std::vector<std::string> added;
    if (e.kind == conv::Kind::kCreate) added = conv::create_members(e.body);
    if (e.kind == conv::Kind::kAdd) added.push_back(e.target);
    for (const auto& who : added) {
      if (conv::node_of(who) != config_.name || before.count(who) || !members.count(who)) continue;
      PARLEY_ASSIGN_OR_RETURN(blocked, local_blocks(who, e.author));
      if (!blocked) continue;
      spdlog::info("event=group_add_declined conv={} user={} reason=\"added by a user they block\"",
                   r.conv(), who);
      out.push_back(who);
    }
  }
  return out;
}

Status Core::leave_unwanted(const std::string& conv, const std::vector<std::string>& users) {
  // Nothing of this group goes to them, not even their own leave.
  for (const auto& u : users) silent_members_.insert({conv, u});
  Status s = ok_status();
  for (const auto& u : users) {
    if (!s.ok()) break;
    s = conv_author(u, conv, conv::Kind::kLeave, u, "", "").status();  // settles and sends
  }
  for (const auto& u : users) silent_members_.erase({conv, u});
  return s;
}

}  // namespace parley::node
