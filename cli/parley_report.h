// `parley report CONV MSG [--reason TEXT] [--include-text]`: reports a message to the admins of
// the user's node (spec/client-protocol.md section 14). The message's text goes along only with
// --include-text, taken from this device's decrypted history.
#pragma once

#include <string>

namespace parley::client {
class Profile;
class Session;
}  // namespace parley::client

namespace parley::cli {

struct ReportArgs {
  std::string target;   // an address or dm:… (1:1), a group id or name
  std::string message;  // 1:1: its #number (cseq) or msg_id; group: event id or unique prefix
  std::string reason;
  bool include_text = false;
};

// Files the report; returns the exit code.
int run_report(client::Session& s, client::Profile& profile, const ReportArgs& args);

}  // namespace parley::cli
