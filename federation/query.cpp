#include "parley/federation/query.h"

#include "parley/message.h"

namespace parley::federation {

std::string DirectoryQuery::encode() const {
  wire::MapWriter m;
  m.add("user", user).add("asker", asker);
  if (!devices.empty()) {
    wire::ArrayWriter ids;
    for (auto d : devices) ids.push(d);
    m.add("devices", ids);
  }
  return m.finish();
}

Result<DirectoryQuery> DirectoryQuery::decode(std::string_view bytes) {
  auto msg = wire::Message::parse(bytes, wire::Limits{101, 8, 1024, 1024, 3});
  if (!msg.ok()) return make_error("bad_request", "query: " + msg.error().message);
  const auto root = msg->root();
  DirectoryQuery q;
  PARLEY_ASSIGN_OR_RETURN(user, root.str("user", 64));
  PARLEY_ASSIGN_OR_RETURN(asker, root.str("asker", 320));
  q.user = std::move(user);
  q.asker = std::move(asker);
  if (root.has("devices")) {
    PARLEY_ASSIGN_OR_RETURN(ids, root.array("devices"));
    if (ids.size() > 100) return make_error("bad_request", "at most 100 devices per query");
    for (const auto& v : ids) {
      PARLEY_ASSIGN_OR_RETURN(id, v.as_uint());
      q.devices.push_back(id);
    }
  }
  return q;
}

}  // namespace parley::federation
