#include "parley_report.h"

#include <cstdio>

#include "parley/address.h"
#include "parley/client/session.h"
#include "parley_group.h"
#include "parley_output.h"

namespace parley::cli {

namespace {

bool is_number(const std::string& s) {
  return !s.empty() && s.size() <= 18 && s.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

int run_report(client::Session& s, client::Profile& profile, const ReportArgs& a) {
  wire::MapWriter f;
  std::string conv;
  std::optional<client::StoredMessage> seen;  // this device's copy, for --include-text
  const bool dm = a.target.rfind("dm:", 0) == 0 || a.target.find('@') != std::string::npos;
  if (dm) {
    if (a.target.rfind("dm:", 0) == 0) {
      conv = a.target;
    } else {
      auto peer = wire::parse_address(a.target);
      if (!peer.ok()) return fail(peer.error());
      conv = wire::dm_conversation_id(s.address(), peer->str());
    }
    const std::string number = a.message.rfind('#', 0) == 0 ? a.message.substr(1) : a.message;
    f.add("conv", conv);
    if (is_number(number)) {
      const auto cseq = static_cast<std::int64_t>(std::stoll(number));
      f.add("cseq", static_cast<std::uint64_t>(cseq));
      auto m = profile.find_message(conv, cseq);
      if (!m.ok()) return fail(m.error());
      if (*m) {
        auto full = profile.find_by_id(conv, (*m)->msg_id);  // with its decryption status
        if (!full.ok()) return fail(full.error());
        seen = *full;
      }
    } else {
      f.add("msg_id", a.message);
      auto m = profile.find_by_id(conv, a.message);
      if (!m.ok()) return fail(m.error());
      seen = *m;
    }
  } else {
    auto group = resolve_group(s, a.target);
    if (!group.ok()) return fail(group.error());
    conv = *group;
    auto event = resolve_group_event(s, conv, a.message);
    if (!event.ok()) return fail(event.error());
    f.add("conv", conv).add("msg_id", *event);
    auto m = profile.find_by_id(conv, *event);
    if (!m.ok()) return fail(m.error());
    seen = *m;
  }
  if (!a.reason.empty()) f.add("reason", a.reason);
  if (a.include_text) {
    if (!seen || seen->e2e != "ok") {
      return fail(make_error("not_found",
                             "this device has no readable copy of that message; report it "
                             "without --include-text, or from a device that has it"));
    }
    f.add("text", seen->body);
  }
  auto r = s.call("report", f);
  if (!r.ok()) return fail(r.error());
  std::printf("REPORTED #%llu to the admins of your node (%s)\n",
              static_cast<unsigned long long>(r->root().uint_or("report", 0).value()),
              a.include_text ? "with the message's text" : "without the message's text");
  return kOk;
}

}  // namespace parley::cli
