#include "parley/client/envelope.h"

#include "parley/message.h"

namespace parley::client {

namespace {
constexpr std::size_t kMaxEntries = 1000;
}

const EnvelopeEntry* Envelope::entry_for(const std::string& user, std::uint64_t device) const {
  for (const auto& e : entries) {
    if (e.user == user && e.device == device) return &e;
  }
  return nullptr;
}

std::string Envelope::encode() const {
  wire::ArrayWriter to;
  for (const auto& e : entries) {
    wire::MapWriter m;
    m.add("u", e.user).add("d", e.device).add_bin("h", e.header).add_bin("c", e.ciphertext);
    if (!e.prekey.empty()) m.add_bin("x", e.prekey);
    to.push(m);
  }
  wire::MapWriter env;
  env.add("v", 1).add("sd", sender_device).add("to", to);
  return env.finish();
}

Result<Envelope> Envelope::decode(std::string_view bytes) {
  auto msg = wire::Message::parse(bytes, wire::Limits{kMaxEntries, 8, 320, 1u << 24, 3});
  if (!msg.ok()) return make_error("bad_request", "envelope: " + msg.error().message);
  const auto root = msg->root();
  PARLEY_ASSIGN_OR_RETURN(v, root.uint("v"));
  if (v != 1) return make_error("bad_request", "envelope: unsupported version");
  Envelope out;
  PARLEY_ASSIGN_OR_RETURN(sd, root.uint("sd"));
  out.sender_device = sd;
  PARLEY_ASSIGN_OR_RETURN(to, root.array("to"));
  for (const auto& e : to) {
    EnvelopeEntry entry;
    PARLEY_ASSIGN_OR_RETURN(user, e.str("u", 320));
    PARLEY_ASSIGN_OR_RETURN(device, e.uint("d"));
    PARLEY_ASSIGN_OR_RETURN(header, e.bin("h", 64));
    PARLEY_ASSIGN_OR_RETURN(ciphertext, e.bin("c", 1u << 24));
    entry.user = std::move(user);
    entry.device = device;
    entry.header = std::move(header);
    entry.ciphertext = std::move(ciphertext);
    if (e.has("x")) {
      PARLEY_ASSIGN_OR_RETURN(x, e.bin("x", 512));
      entry.prekey = std::move(x);
    }
    out.entries.push_back(std::move(entry));
  }
  return out;
}

std::string GroupBody::encode() const {
  wire::MapWriter w;
  w.add("v", 2).add("sd", sender_device);
  if (!message.empty()) w.add_bin("sk", message);
  if (dist) w.add_bin("dist", dist->encode());
  return w.finish();
}

Result<GroupBody> GroupBody::decode(std::string_view bytes) {
  auto msg = wire::Message::parse(bytes, wire::Limits{4, 8, 64, 1u << 24, 2});
  if (!msg.ok()) return make_error("bad_request", "group body: " + msg.error().message);
  const auto root = msg->root();
  PARLEY_ASSIGN_OR_RETURN(keys, root.keys());
  for (const auto& k : keys) {
    if (k != "v" && k != "sd" && k != "sk" && k != "dist") {
      return make_error("bad_request", "group body: unknown field " + k);
    }
  }
  PARLEY_ASSIGN_OR_RETURN(v, root.uint("v"));
  if (v != 2) return make_error("bad_request", "group body: unsupported version");
  GroupBody out;
  PARLEY_ASSIGN_OR_RETURN(sd, root.uint("sd"));
  out.sender_device = sd;
  if (root.has("sk")) {
    PARLEY_ASSIGN_OR_RETURN(sk, root.bin("sk", 1u << 24));
    if (sk.empty()) return make_error("bad_request", "group body: empty sk");
    out.message = std::move(sk);
  }
  if (root.has("dist")) {
    PARLEY_ASSIGN_OR_RETURN(dist, root.bin("dist", 1u << 24));
    PARLEY_ASSIGN_OR_RETURN(env, Envelope::decode(dist));
    out.dist = std::move(env);
  }
  // Without sk it is a key handover, which is nothing without a distribution.
  if (out.message.empty() && (!out.dist || out.dist->entries.empty())) {
    return make_error("bad_request", "group body: needs sk or a non-empty dist");
  }
  return out;
}

}  // namespace parley::client
