// An authenticated session with the home node: login or resume, the backlog until `synced`,
// requests matched to responses, pushed events stored in the Profile and acknowledged
// (spec/client-protocol.md sections 5-6). Errors carry the node's code (e.g. "not_allowed",
// "bad_credentials") or "connection_lost" / a `bye` code. One thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "parley/client/connection.h"
#include "parley/client/e2e.h"
#include "parley/client/profile.h"

namespace parley::client {

class Session {
 public:
  // Called for every stream event newly stored in the profile. A message's body is end-to-end
  // ciphertext there; E2e's `opened` callback gets the plaintext (open_pending).
  using EventHandler = std::function<void(const wire::View& ev)>;

  static Result<std::unique_ptr<Session>> login(Profile& profile, const std::string& server,
                                                const std::string& address,
                                                const std::string& password,
                                                const std::string& device, EventHandler handler);
  // Resumes the profile's session. "not_logged_in" when the profile has none.
  static Result<std::unique_ptr<Session>> resume(Profile& profile, EventHandler handler);

  // Sends a request and waits for its response (processing pushes meanwhile).
  Result<wire::Message> call(const std::string& type, const wire::MapWriter& fields,
                             int timeout_ms = 30000);
  // Several requests at once (at most kMaxInFlight outstanding), answers in the same order, so
  // one slow answer (another node that does not answer) costs its wait once, not once per
  // request. A request not answered within `timeout_ms` of the start gets "timeout"; its late
  // answer is dropped.
  struct Request {
    std::string type;
    wire::MapWriter fields;
  };
  static constexpr std::size_t kMaxInFlight = 16;
  Result<std::vector<Result<wire::Message>>> call_all(const std::vector<Request>& requests,
                                                      int timeout_ms);
  // Processes pushed frames for up to timeout_ms; acknowledges what was stored.
  Status pump(int timeout_ms);
  Status ack();
  // Decrypts what arrived (see E2e::process_pending); pump() does it at its end.
  void set_e2e(E2e* e2e, E2e::Opened opened) {
    e2e_ = e2e;
    opened_ = std::move(opened);
  }
  Status open_pending();

  const std::string& address() const { return address_; }
  // How often to ping to stay within the node's heartbeat timeout.
  int ping_interval_ms() const { return heartbeat_ms_ / 3; }

 private:
  Session(Profile& profile, std::unique_ptr<Connection> conn, EventHandler handler)
      : profile_(profile), conn_(std::move(conn)), handler_(std::move(handler)) {}
  Status handle_push(const wire::Message& frame);
  Status until_synced();

  Profile& profile_;
  std::unique_ptr<Connection> conn_;
  EventHandler handler_;
  E2e* e2e_ = nullptr;
  E2e::Opened opened_;
  bool opening_ = false;  // open_pending is running (its requests pump too)
  std::string address_;
  std::uint64_t next_id_ = 1;
  std::int64_t highest_seq_ = 0;
  std::int64_t acked_ = 0;
  bool synced_ = false;
  int heartbeat_ms_ = 60000;
};

}  // namespace parley::client
