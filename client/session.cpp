#include "parley/client/session.h"

#include <chrono>
#include <cstdio>
#include <map>

namespace parley::client {

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

constexpr int kConnectTimeoutMs = 10000;

}  // namespace

Status Session::handle_push(const wire::Message& frame) {
  const std::string& t = frame.type();
  if (t == "bye") {
    return make_error(frame.root().str_or("code", "connection_lost").value(),
                      frame.root().str_or("msg", "the node closed the connection").value());
  }
  if (t == "synced") {
    synced_ = true;
    return ok_status();
  }
  if (t != "ev") return ok_status();  // unknown pushes are ignored (forward compatibility)
  PARLEY_ASSIGN_OR_RETURN(seq, frame.root().uint("seq"));
  PARLEY_ASSIGN_OR_RETURN(is_new, profile_.store_event(frame.root(), address_));
  highest_seq_ = std::max(highest_seq_, static_cast<std::int64_t>(seq));
  if (is_new && handler_) handler_(frame.root());
  return ok_status();
}

namespace {

// A response frame as a result: the frame, or its error (with the wait of a rate limit).
Result<wire::Message> answer_of(wire::Message frame) {
  if (frame.root().boolean_or("ok", false).value()) return frame;
  std::string code = frame.root().str_or("code", "internal").value();
  std::string msg = frame.root().str_or("msg", "request failed").value();
  // rate_limited answers say when to try again; the message carries it to the user.
  if (const auto wait = frame.root().uint_or("retry_after_ms", 0).value(); wait > 0) {
    char buf[64];
    std::snprintf(buf, sizeof buf, " (rate limited: retry after %.1f s)", wait / 1000.0);
    msg += buf;
  }
  return make_error(std::move(code), std::move(msg));
}

}  // namespace

Result<std::vector<Result<wire::Message>>> Session::call_all(const std::vector<Request>& requests,
                                                             int timeout_ms) {
  std::vector<Result<wire::Message>> out;
  out.reserve(requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    out.emplace_back(make_error("timeout", "no answer from the node to " + requests[i].type));
  }
  std::map<std::uint64_t, std::size_t> waiting;  // request id -> index
  std::size_t next = 0;
  const std::int64_t deadline = now_ms() + timeout_ms;
  while (next < requests.size() || !waiting.empty()) {
    while (next < requests.size() && waiting.size() < kMaxInFlight) {
      const std::uint64_t id = next_id_++;
      wire::MapWriter w;
      w.add("t", requests[next].type).add("id", id);
      w.merge_map(requests[next].fields.finish());
      PARLEY_TRY(conn_->send(w.finish()));
      waiting.emplace(id, next++);
    }
    const auto left = static_cast<int>(std::max<std::int64_t>(0, deadline - now_ms()));
    if (left == 0) break;
    PARLEY_ASSIGN_OR_RETURN(frame, conn_->read(left));
    if (!frame) break;
    if (frame->type() == "re") {
      const auto it = waiting.find(frame->root().uint_or("id", 0).value());
      if (it != waiting.end()) {
        out[it->second] = answer_of(std::move(*frame));
        waiting.erase(it);
      }
      continue;  // else an answer nobody waits for any more (it came too late)
    }
    PARLEY_TRY(handle_push(*frame));
  }
  return out;
}

Result<wire::Message> Session::call(const std::string& type, const wire::MapWriter& fields,
                                    int timeout_ms) {
  std::vector<Request> one;
  one.push_back({type, fields});
  PARLEY_ASSIGN_OR_RETURN(answers, call_all(one, timeout_ms));
  return std::move(answers.front());
}

Status Session::until_synced() {
  const std::int64_t deadline = now_ms() + 60000;
  while (!synced_) {
    const auto left = static_cast<int>(std::max<std::int64_t>(0, deadline - now_ms()));
    PARLEY_ASSIGN_OR_RETURN(frame, conn_->read(left));
    if (!frame) return make_error("timeout", "the node did not finish sending the backlog");
    PARLEY_TRY(handle_push(*frame));
    // Acknowledge as we go so a long backlog is not re-sent after an interruption.
    if (highest_seq_ - acked_ >= 256) PARLEY_TRY(ack());
  }
  return ack();
}

Status Session::pump(int timeout_ms) {
  const std::int64_t deadline = now_ms() + timeout_ms;
  for (;;) {
    const auto left = static_cast<int>(std::max<std::int64_t>(0, deadline - now_ms()));
    PARLEY_ASSIGN_OR_RETURN(frame, conn_->read(left));
    if (!frame) break;
    PARLEY_TRY(handle_push(*frame));
    if (left == 0) break;
  }
  PARLEY_TRY(ack());
  return open_pending();
}

Status Session::open_pending() {
  if (!e2e_ || opening_) return ok_status();
  opening_ = true;
  Status s = e2e_->process_pending(*this, opened_);
  opening_ = false;
  return s;
}

Status Session::ack() {
  if (highest_seq_ <= acked_) return ok_status();
  const std::int64_t upto = highest_seq_;
  wire::MapWriter f;
  f.add("upto", upto);
  PARLEY_ASSIGN_OR_RETURN(re, call("ack", f));
  acked_ = upto;
  return profile_.set("cursor", std::to_string(upto));
}

Result<std::unique_ptr<Session>> Session::login(Profile& profile, const std::string& server,
                                                const std::string& address,
                                                const std::string& password,
                                                const std::string& device, EventHandler handler) {
  PARLEY_ASSIGN_OR_RETURN(conn, Connection::open(server, kConnectTimeoutMs));
  std::unique_ptr<Session> s(new Session(profile, std::move(conn), std::move(handler)));
  wire::MapWriter f;
  f.add("user", address).add("password", password).add("device", device);
  PARLEY_ASSIGN_OR_RETURN(re, s->call("login", f));
  s->address_ = re.root().str("user").value();
  s->heartbeat_ms_ = static_cast<int>(re.root().uint_or("heartbeat_ms", 60000).value());
  PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(profile.db()));
  PARLEY_TRY(profile.set("server", server));
  PARLEY_TRY(profile.set("address", s->address_));
  PARLEY_TRY(profile.set("token", re.root().str("token").value()));
  PARLEY_TRY(profile.set("device_id", std::to_string(re.root().uint("device_id").value())));
  PARLEY_TRY(tx.commit());
  PARLEY_TRY(s->until_synced());
  return s;
}

Result<std::unique_ptr<Session>> Session::resume(Profile& profile, EventHandler handler) {
  PARLEY_ASSIGN_OR_RETURN(server, profile.get("server"));
  PARLEY_ASSIGN_OR_RETURN(token, profile.get("token"));
  if (server.empty() || token.empty()) {
    return make_error("not_logged_in",
                      "this profile is not logged in; run: parley login ADDRESS "
                      "--server HOST:PORT");
  }
  PARLEY_ASSIGN_OR_RETURN(conn, Connection::open(server, kConnectTimeoutMs));
  std::unique_ptr<Session> s(new Session(profile, std::move(conn), std::move(handler)));
  PARLEY_ASSIGN_OR_RETURN(address, profile.get("address"));
  s->address_ = address;
  wire::MapWriter f;
  f.add("token", token);
  auto re = s->call("resume", f);
  if (!re.ok()) {
    if (re.error().code == "bad_credentials") {
      return make_error("bad_credentials",
                        "the session was ended (logged out, signed out by an admin, password "
                        "reset, account deactivated or deleted); log in again");
    }
    return re.take_error();
  }
  s->heartbeat_ms_ = static_cast<int>(re->root().uint_or("heartbeat_ms", 60000).value());
  PARLEY_ASSIGN_OR_RETURN(cursor, profile.get("cursor"));
  s->acked_ = cursor.empty() ? 0 : std::stoll(cursor);
  PARLEY_TRY(s->until_synced());
  return s;
}

}  // namespace parley::client
