#include "parley/node/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <toml++/toml.h>
#include <filesystem>
#include <set>
#include <sstream>

#include "parley/address.h"

namespace parley::node {

Result<HostPort> parse_host_port(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return make_error("bad_config", "'" + std::string(text) + "' is not HOST:PORT");
  }
  HostPort hp;
  hp.host = std::string(text.substr(0, colon));
  if (hp.host.size() > 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  }
  const std::string port(text.substr(colon + 1));
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos) {
    return make_error("bad_config", "'" + std::string(text) + "' has no valid port");
  }
  const unsigned long p = std::stoul(port);
  if (p > 65535) return make_error("bad_config", "port " + port + " is above 65535");
  hp.port = static_cast<std::uint16_t>(p);
  return hp;
}

Result<DirectMessagePolicy> parse_dm_policy(std::string_view text) {
  if (text == "friends") return DirectMessagePolicy::kFriends;
  if (text == "organization") return DirectMessagePolicy::kOrganization;
  if (text == "anyone") return DirectMessagePolicy::kAnyone;
  return make_error("bad_config", "policy.direct_messages must be friends, organization or anyone");
}

const char* to_string(DirectMessagePolicy policy) {
  switch (policy) {
    case DirectMessagePolicy::kFriends:
      return "friends";
    case DirectMessagePolicy::kOrganization:
      return "organization";
    case DirectMessagePolicy::kAnyone:
      return "anyone";
  }
  return "friends";
}

namespace {

const char* strength_name(crypto::PasswordStrength s) {
  switch (s) {
    case crypto::PasswordStrength::kTestOnlyMinimal:
      return "test-only-minimal";
    case crypto::PasswordStrength::kInteractive:
      return "interactive";
    case crypto::PasswordStrength::kModerate:
      return "moderate";
  }
  return "interactive";
}

// Rejects keys the config format does not define, naming the first one found.
Status check_known_keys(const toml::table& root) {
  static const std::set<std::string> kKnown = {
      "node.name",
      "node.log_level",
      "client.listen",
      "client.max_frame_bytes",
      "client.max_body_bytes",
      "client.heartbeat_timeout_seconds",
      "client.max_outbound_frames",
      "client.max_connections",
      "client.max_unauthenticated_per_source",
      "client.max_outbound_bytes",
      "client.max_connections_per_user",
      "client.allow_plaintext_remote",
      "federation.listen",
      "federation.policy",
      "federation.allow_plaintext_http",
      "federation.tls_cert",
      "federation.tls_key",
      "federation.tls_ca",
      "federation.public_url",
      "federation.discovery_url",
      "federation.requests_per_second",
      "federation.concurrent_per_origin",
      "federation.max_connections",
      "federation.max_connections_per_source",
      "federation.request_timeout_seconds",
      "federation.idle_timeout_seconds",
      "federation.allow_private_addresses",
      "admin.listen",
      "metrics.listen",
      "metrics.allow_remote",
      "policy.direct_messages",
      "security.password_hash",
      "security.login_failures_per_window",
      "security.login_window_seconds",
      "security.login_failures_per_source",
      "security.login_failures_per_account",
      "storage.max_database_mb",
      "limits.messages_per_minute",
      "limits.message_burst",
      "limits.reports_per_hour",
      // client port bounds (issue 14 item 4)
      "limits.to_device_per_minute",
      "limits.to_device_burst",
      // Federation work per user, and the outbound queue's lifetime.
      "limits.friend_requests_per_hour",
      "limits.groups_per_hour",
      "federation.queue_lifetime_seconds",
      "storage.test_fault_file",
      "retention.purge_interval_seconds",
      "retention.purge_batch",
  };
  for (const auto& [section, value] : root) {
    const auto* table = value.as_table();
    if (!table) {
      return make_error("bad_config", "unknown top-level key '" + std::string(section.str()) + "'");
    }
    for (const auto& [key, unused] : *table) {
      const std::string full = std::string(section.str()) + "." + std::string(key.str());
      if (!kKnown.count(full)) return make_error("bad_config", "unknown config key '" + full + "'");
    }
  }
  return ok_status();
}

template <class T>
Status read_uint(const toml::table& root, const char* path, T& out, std::uint64_t min,
                 std::uint64_t max) {
  const auto node = root.at_path(path);
  if (!node) return ok_status();
  const auto v = node.value<std::int64_t>();
  if (!v || *v < 0 || static_cast<std::uint64_t>(*v) < min ||
      static_cast<std::uint64_t>(*v) > max) {
    return make_error("bad_config", std::string(path) + " must be an integer from " +
                                        std::to_string(min) + " to " + std::to_string(max));
  }
  out = static_cast<T>(*v);
  return ok_status();
}

Status read_listen(const toml::table& root, const char* path, HostPort& out) {
  const auto node = root.at_path(path);
  if (!node) return ok_status();
  const auto v = node.value<std::string>();
  if (!v) return make_error("bad_config", std::string(path) + " must be a \"HOST:PORT\" string");
  PARLEY_ASSIGN_OR_RETURN(hp, parse_host_port(*v));
  out = hp;
  return ok_status();
}

}  // namespace

Result<NodeConfig> load_config(const std::string& path) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << path << ":" << e.source().begin.line << ": " << e.description();
    return make_error("bad_config", msg.str());
  } catch (const std::exception& e) {
    return make_error("bad_config", "cannot read " + path + ": " + e.what());
  }
  PARLEY_TRY(check_known_keys(root));
  NodeConfig c;
  const auto name = root.at_path("node.name").value<std::string>();
  if (!name) return make_error("bad_config", path + ": node.name is missing");
  c.name = *name;
  PARLEY_TRY(wire::validate_domain(c.name));
  if (auto lvl = root.at_path("node.log_level").value<std::string>()) c.log_level = *lvl;
  PARLEY_TRY(read_listen(root, "client.listen", c.client_listen));
  PARLEY_TRY(read_listen(root, "federation.listen", c.federation_listen));
  PARLEY_TRY(read_listen(root, "admin.listen", c.admin_listen));
  if (auto node = root.at_path("metrics.listen")) {
    const auto v = node.value<std::string>();
    if (!v)
      return make_error("bad_config", "metrics.listen must be a \"HOST:PORT\" string or \"\"");
    if (!v->empty()) {
      PARLEY_ASSIGN_OR_RETURN(hp, parse_host_port(*v));
      c.metrics_listen = hp;
    }
  }
  if (auto node = root.at_path("metrics.allow_remote")) {
    const auto v = node.value<bool>();
    if (!v) return make_error("bad_config", "metrics.allow_remote must be true or false");
    c.metrics_allow_remote = *v;
  }
  PARLEY_TRY(read_uint(root, "client.max_frame_bytes", c.max_frame_bytes, 1024, 16u << 20));
  PARLEY_TRY(read_uint(root, "client.max_body_bytes", c.max_body_bytes, 1, 16u << 20));
  PARLEY_TRY(
      read_uint(root, "client.heartbeat_timeout_seconds", c.heartbeat_timeout_seconds, 1, 86400));
  PARLEY_TRY(read_uint(root, "client.max_outbound_frames", c.max_outbound_frames, 16, 1u << 20));
  PARLEY_TRY(read_uint(root, "client.max_connections", c.max_connections, 1, 1u << 20));
  PARLEY_TRY(read_uint(root, "client.max_unauthenticated_per_source",
                       c.max_unauthenticated_per_source, 1, 1u << 20));
  PARLEY_TRY(
      read_uint(root, "client.max_outbound_bytes", c.max_outbound_bytes, 2u << 20, 1u << 30));
  PARLEY_TRY(
      read_uint(root, "client.max_connections_per_user", c.max_connections_per_user, 1, 1u << 16));
  // client port bounds, [limits] part (issue 14 item 4)
  PARLEY_TRY(read_uint(root, "limits.to_device_per_minute", c.to_device_per_minute, 0, 1u << 20));
  PARLEY_TRY(read_uint(root, "limits.to_device_burst", c.to_device_burst, 1, 1u << 20));
  PARLEY_TRY(read_uint(root, "security.login_failures_per_window", c.login_failures_per_window, 1,
                       1u << 20));
  PARLEY_TRY(read_uint(root, "security.login_window_seconds", c.login_window_seconds, 1, 86400));
  PARLEY_TRY(read_uint(root, "security.login_failures_per_source", c.login_failures_per_source, 1,
                       1u << 20));
  PARLEY_TRY(read_uint(root, "security.login_failures_per_account", c.login_failures_per_account, 1,
                       1u << 20));
  PARLEY_TRY(read_uint(root, "limits.messages_per_minute", c.messages_per_minute, 0, 1u << 20));
  PARLEY_TRY(read_uint(root, "limits.message_burst", c.message_burst, 1, 1u << 20));
  PARLEY_TRY(read_uint(root, "limits.reports_per_hour", c.reports_per_hour, 1, 10000));
  // Federation work per user, and the outbound queue's lifetime (at least a minute, at most a
  // year: an event older than that is of no use to anyone).
  PARLEY_TRY(
      read_uint(root, "limits.friend_requests_per_hour", c.friend_requests_per_hour, 1, 100000));
  PARLEY_TRY(read_uint(root, "limits.groups_per_hour", c.groups_per_hour, 1, 100000));
  PARLEY_TRY(read_uint(root, "federation.queue_lifetime_seconds",
                       c.federation_queue_lifetime_seconds, 1, 366u * 24 * 3600));
  if (c.max_body_bytes + 1024 > c.max_frame_bytes) {
    return make_error("bad_config", "client.max_frame_bytes must exceed max_body_bytes by 1024");
  }
  if (auto fp = root.at_path("federation.policy").value<std::string>()) {
    if (*fp != "open" && *fp != "allowlist") {
      return make_error("bad_config", "federation.policy must be open or allowlist");
    }
    c.federation_policy = *fp;
  }
  if (auto node = root.at_path("federation.allow_plaintext_http")) {
    const auto v = node.value<bool>();
    if (!v) return make_error("bad_config", "federation.allow_plaintext_http must be a boolean");
    c.federation_allow_plaintext = *v;
  }
  const std::string base = std::filesystem::path(path).parent_path().string();
  for (auto [key, out] : {std::pair{"federation.tls_cert", &c.federation_tls_cert},
                          std::pair{"federation.tls_key", &c.federation_tls_key},
                          std::pair{"federation.tls_ca", &c.federation_tls_ca}}) {
    const auto node = root.at_path(key);
    if (!node) continue;
    const auto v = node.value<std::string>();
    if (!v || v->empty())
      return make_error("bad_config", std::string(key) + " must be a file path");
    *out = (v->front() == '/' || base.empty()) ? *v : base + "/" + *v;
  }
  if (c.federation_tls_cert.empty() != c.federation_tls_key.empty()) {
    return make_error("bad_config", "federation.tls_cert and federation.tls_key go together");
  }
  if (auto node = root.at_path("federation.public_url")) {
    const auto v = node.value<std::string>();
    // http:// only where plain HTTP is allowed at all (spec/federation.md section 3).
    const bool plain = v && v->rfind("http://", 0) == 0;
    if (!v || (v->rfind("https://", 0) != 0 && !plain)) {
      return make_error("bad_config", "federation.public_url must be an https:// URL");
    }
    if (plain && !c.federation_allow_plaintext) {
      return make_error("bad_config",
                        "federation.public_url is http:// but federation.allow_plaintext_http "
                        "is false");
    }
    c.federation_public_url = *v;
  }
  if (auto node = root.at_path("federation.discovery_url")) {
    const auto v = node.value<std::string>();
    if (!v || v->find("{name}") == std::string::npos ||
        (v->rfind("https://", 0) != 0 && v->rfind("http://", 0) != 0)) {
      return make_error("bad_config",
                        "federation.discovery_url must be an https:// URL containing {name}");
    }
    c.federation_discovery_url = *v;
  }
  PARLEY_TRY(read_uint(root, "storage.max_database_mb", c.max_database_mb, 0, 1u << 30));
  PARLEY_TRY(
      read_uint(root, "retention.purge_interval_seconds", c.purge_interval_seconds, 0, 7 * 86400));
  PARLEY_TRY(read_uint(root, "retention.purge_batch", c.purge_batch, 1, 100000));
  if (auto node = root.at_path("storage.test_fault_file")) {
    const auto v = node.value<std::string>();
    if (!v) return make_error("bad_config", "storage.test_fault_file must be a path");
    c.test_fault_file = *v;
  }
  PARLEY_TRY(read_uint(root, "federation.requests_per_second", c.federation_requests_per_second, 1,
                       1u << 20));
  PARLEY_TRY(read_uint(root, "federation.concurrent_per_origin", c.federation_concurrent_per_origin,
                       1, 1024));
  PARLEY_TRY(
      read_uint(root, "federation.max_connections", c.federation_max_connections, 1, 1u << 20));
  PARLEY_TRY(read_uint(root, "federation.max_connections_per_source",
                       c.federation_max_connections_per_source, 1, 1u << 20));
  PARLEY_TRY(read_uint(root, "federation.request_timeout_seconds",
                       c.federation_request_timeout_seconds, 1, 3600));
  PARLEY_TRY(read_uint(root, "federation.idle_timeout_seconds", c.federation_idle_timeout_seconds,
                       1, 3600));
  if (auto node = root.at_path("federation.allow_private_addresses")) {
    const auto v = node.value<bool>();
    if (!v) {
      return make_error("bad_config", "federation.allow_private_addresses must be true or false");
    }
    c.federation_allow_private_addresses = *v;
  }
  if (auto node = root.at_path("client.allow_plaintext_remote")) {
    const auto v = node.value<bool>();
    if (!v) return make_error("bad_config", "client.allow_plaintext_remote must be true or false");
    c.allow_plaintext_remote = *v;
  }
  PARLEY_TRY(check_exposure(c));
  if (auto p = root.at_path("policy.direct_messages").value<std::string>()) {
    PARLEY_ASSIGN_OR_RETURN(policy, parse_dm_policy(*p));
    c.direct_messages = policy;
  }
  if (auto s = root.at_path("security.password_hash").value<std::string>()) {
    PARLEY_ASSIGN_OR_RETURN(strength, crypto::parse_password_strength(*s));
    c.password_strength = strength;
  }
  return c;
}

void take_reloadable(NodeConfig& live, const NodeConfig& fresh) {
  live.log_level = fresh.log_level;
  live.direct_messages = fresh.direct_messages;
  live.federation_policy = fresh.federation_policy;
  live.federation_requests_per_second = fresh.federation_requests_per_second;
  live.federation_concurrent_per_origin = fresh.federation_concurrent_per_origin;
  live.max_frame_bytes = fresh.max_frame_bytes;
  live.max_body_bytes = fresh.max_body_bytes;
  live.heartbeat_timeout_seconds = fresh.heartbeat_timeout_seconds;
  live.max_outbound_frames = fresh.max_outbound_frames;
  live.max_connections = fresh.max_connections;
  live.max_unauthenticated_per_source = fresh.max_unauthenticated_per_source;
  live.max_outbound_bytes = fresh.max_outbound_bytes;
  live.max_connections_per_user = fresh.max_connections_per_user;
  live.to_device_per_minute = fresh.to_device_per_minute;
  live.to_device_burst = fresh.to_device_burst;
  live.login_failures_per_window = fresh.login_failures_per_window;
  live.login_window_seconds = fresh.login_window_seconds;
  live.login_failures_per_source = fresh.login_failures_per_source;
  live.login_failures_per_account = fresh.login_failures_per_account;
  live.purge_interval_seconds = fresh.purge_interval_seconds;
  live.purge_batch = fresh.purge_batch;
  live.messages_per_minute = fresh.messages_per_minute;
  live.message_burst = fresh.message_burst;
  live.reports_per_hour = fresh.reports_per_hour;
  live.friend_requests_per_hour = fresh.friend_requests_per_hour;
  live.groups_per_hour = fresh.groups_per_hour;
  live.federation_queue_lifetime_seconds = fresh.federation_queue_lifetime_seconds;
}

std::vector<std::string> restart_only_changes(const NodeConfig& a, const NodeConfig& b) {
  std::vector<std::string> keys;
  const auto differs = [&](const char* key, bool changed) {
    if (changed) keys.emplace_back(key);
  };
  const auto hp = [](const std::optional<HostPort>& h) { return h ? h->str() : std::string(); };
  differs("node.name", a.name != b.name);
  differs("client.listen", a.client_listen.str() != b.client_listen.str());
  differs("client.allow_plaintext_remote", a.allow_plaintext_remote != b.allow_plaintext_remote);
  differs("federation.listen", a.federation_listen.str() != b.federation_listen.str());
  differs("federation.tls_cert", a.federation_tls_cert != b.federation_tls_cert);
  differs("federation.tls_key", a.federation_tls_key != b.federation_tls_key);
  differs("federation.tls_ca", a.federation_tls_ca != b.federation_tls_ca);
  differs("federation.public_url", a.federation_public_url != b.federation_public_url);
  differs("federation.discovery_url", a.federation_discovery_url != b.federation_discovery_url);
  differs("federation.allow_plaintext_http",
          a.federation_allow_plaintext != b.federation_allow_plaintext);
  differs("federation.max_connections",
          a.federation_max_connections != b.federation_max_connections);
  differs("federation.max_connections_per_source",
          a.federation_max_connections_per_source != b.federation_max_connections_per_source);
  differs("federation.request_timeout_seconds",
          a.federation_request_timeout_seconds != b.federation_request_timeout_seconds);
  differs("federation.idle_timeout_seconds",
          a.federation_idle_timeout_seconds != b.federation_idle_timeout_seconds);
  differs("federation.allow_private_addresses",
          a.federation_allow_private_addresses != b.federation_allow_private_addresses);
  differs("admin.listen", a.admin_listen.str() != b.admin_listen.str());
  differs("metrics.listen", hp(a.metrics_listen) != hp(b.metrics_listen));
  differs("metrics.allow_remote", a.metrics_allow_remote != b.metrics_allow_remote);
  differs("security.password_hash", a.password_strength != b.password_strength);
  differs("storage.max_database_mb", a.max_database_mb != b.max_database_mb);
  differs("storage.test_fault_file", a.test_fault_file != b.test_fault_file);
  return keys;
}

std::string federation_scheme(const NodeConfig& c) {
  return c.federation_tls_cert.empty() ? "http" : "https";
}

std::string federation_public_url(const NodeConfig& c) {
  if (!c.federation_public_url.empty()) return c.federation_public_url;
  // https even when the listener speaks plain HTTP (tests, or TLS ended by a proxy in front of
  // it): peers refuse http:// unless their own config allows it, so advertising it would only
  // invite a downgrade. A node that really is reached over http:// says so in public_url.
  return "https://" + c.name + ":" + std::to_string(c.federation_listen.port);
}

// An address literal, parsed (inet_pton: dotted-quad IPv4, RFC 4291 IPv6), in 127.0.0.0/8 or
// ::1 (also as ::ffff:127.x.y.z); or the name "localhost" (RFC 6761). A host name that merely
// starts with "127." is not loopback.
bool is_loopback(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) != 1) return false;
  if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
  return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
}

Status check_exposure(const NodeConfig& c) {
  if (c.metrics_listen && !is_loopback(c.metrics_listen->host) && !c.metrics_allow_remote) {
    return make_error("bad_config", "metrics.listen " + c.metrics_listen->str() +
                                        " is not loopback; the metrics endpoint has no "
                                        "authentication: keep it on loopback or set "
                                        "metrics.allow_remote = true behind a firewall");
  }
  if (!is_loopback(c.admin_listen.host)) {
    return make_error("bad_config", "admin.listen " + c.admin_listen.str() +
                                        " must be a loopback address (127.0.0.1 or ::1)");
  }
  if (!is_loopback(c.client_listen.host) && !c.allow_plaintext_remote) {
    return make_error(
        "bad_config",
        "client.listen " + c.client_listen.str() +
            " is not loopback and the client port has no TLS of its own yet; put a TLS "
            "terminator in front of it and set client.allow_plaintext_remote = true");
  }
  return ok_status();
}

std::string render_config(const NodeConfig& c) {
  std::ostringstream o;
  o << "# Parley node configuration. Every key is optional except node.name.\n"
    << "# `systemctl reload parleyd` (SIGHUP) applies the log level, policies and limits at once;\n"
    << "# listen addresses, TLS files and storage settings take effect at the next restart.\n\n"
    << "[node]\n"
    << "# The organization's domain: user addresses are user@" << c.name << ".\n"
    << "name = \"" << c.name << "\"\n"
    << "# trace, debug, info, warn, error\n"
    << "log_level = \"" << c.log_level << "\"\n\n"
    << "[client]\n"
    << "# Where user devices connect (spec/client-protocol.md).\n"
    << "listen = \"" << c.client_listen.str() << "\"\n"
    << "# Largest frame accepted from a client, and largest message body.\n"
    << "max_frame_bytes = " << c.max_frame_bytes << "\n"
    << "max_body_bytes = " << c.max_body_bytes << "\n"
    << "# A connection that sends nothing (not even a ping) for this long is closed.\n"
    << "heartbeat_timeout_seconds = " << c.heartbeat_timeout_seconds << "\n"
    << "# Frames queued for one connection before it is dropped as a slow consumer.\n"
    << "max_outbound_frames = " << c.max_outbound_frames << "\n"
    << "max_connections = " << c.max_connections << "\n"
    << "# Connections from one source IP that have not logged in yet; more are closed at once.\n"
    << "# Before login a frame may hold at most 8192 bytes.\n"
    << "max_unauthenticated_per_source = " << c.max_unauthenticated_per_source << "\n"
    << "# Bytes queued towards one connection before it is closed as a slow consumer (at least\n"
    << "# 2 MiB), and connections one user may have signed in at once.\n"
    << "max_outbound_bytes = " << c.max_outbound_bytes << "\n"
    << "max_connections_per_user = " << c.max_connections_per_user << "\n"
    << "# The client port speaks plain TCP. To listen beyond loopback, terminate TLS in front of\n"
    << "# it (e.g. a TLS proxy) and set this to true.\n"
    << "allow_plaintext_remote = " << (c.allow_plaintext_remote ? "true" : "false") << "\n\n"
    << "[federation]\n"
    << "# Where other Parley nodes reach this one.\n"
    << "listen = \"" << c.federation_listen.str() << "\"\n"
    << "# open: any node may federate (its key is pinned on first use); allowlist: only peers\n"
    << "# the admin listed with `parleyd peer add` or `parleyd peer allow` (not the entries the\n"
    << "# node makes itself for a destination or a discovered URL), inbound and outbound.\n"
    << "policy = \"" << c.federation_policy << "\"\n"
    << "# TLS certificate chain and key (PEM, relative to this directory) for the listener.\n"
    << "# Without them the federation listener stays off unless plain HTTP is allowed.\n"
    << "# tls_cert = \"federation.crt\"\n"
    << "# tls_key = \"federation.key\"\n"
    << "# Extra CA certificates (PEM) trusted for peers, besides the system's.\n"
    << "# tls_ca = \"peers-ca.pem\"\n"
    << "# The base URL /.well-known/parley advertises (default https://NAME:PORT).\n"
    << "# public_url = \"https://" << c.name << ":" << c.federation_listen.port << "\"\n"
    << "# How nodes without a peer entry are found ({name} is the node name).\n"
    << "discovery_url = \"" << c.federation_discovery_url << "\"\n"
    << "# Admission control per origin node: requests per second, requests in flight.\n"
    << "requests_per_second = " << c.federation_requests_per_second << "\n"
    << "concurrent_per_origin = " << c.federation_concurrent_per_origin << "\n"
    << "# The listener's bounds: connections in total and per source address, seconds a\n"
    << "# request body may take, seconds a kept-alive connection may stay quiet.\n"
    << "max_connections = " << c.federation_max_connections << "\n"
    << "max_connections_per_source = " << c.federation_max_connections_per_source << "\n"
    << "request_timeout_seconds = " << c.federation_request_timeout_seconds << "\n"
    << "idle_timeout_seconds = " << c.federation_idle_timeout_seconds << "\n"
    << "# Plain http:// between nodes is for loopback tests only.\n"
    << "allow_plaintext_http = " << (c.federation_allow_plaintext ? "true" : "false") << "\n"
    << "# Discovery never leads to loopback or private addresses unless this is true (test\n"
    << "# networks only; static peers added with `parleyd peer add` are always allowed).\n"
    << "allow_private_addresses = " << (c.federation_allow_private_addresses ? "true" : "false")
    << "\n"
    << "# Seconds an event may wait for its peer in the outbound queue (also while the peer is\n"
    << "# denied); then it is dropped and counted, and a friend request shows as failed.\n"
    << "queue_lifetime_seconds = " << c.federation_queue_lifetime_seconds << "\n\n"
    << "[admin]\n"
    << "# The admin API used by `parleyd user ...`; keep it on loopback. Requests must carry\n"
    << "# the token in admin.token (mode 0600) beside this file.\n"
    << "listen = \"" << c.admin_listen.str() << "\"\n\n"
    << "[metrics]\n"
    << "# Prometheus metrics (/metrics) and /health, /ready on plain HTTP without\n"
    << "# authentication: keep it on loopback (allow_remote = true lifts that). \"\": off.\n"
    << "listen = \"" << (c.metrics_listen ? c.metrics_listen->str() : "") << "\"\n\n"
    << "[policy]\n"
    << "# Who may open a 1:1 conversation: friends, organization (same node) or anyone.\n"
    << "direct_messages = \"" << to_string(c.direct_messages) << "\"\n\n"
    << "[security]\n"
    << "# Argon2id cost for stored passwords: interactive or moderate.\n"
    << "# (test-only-minimal exists for test suites; never use it for real users.)\n"
    << "password_hash = \"" << strength_name(c.password_strength) << "\"\n"
    << "# Password logins that may fail in each window (seconds): per address from one source\n"
    << "# IP, per source IP over all addresses, and per address over all sources. An attempt\n"
    << "# counts from its start and a success gives it back; beyond a bound the login is\n"
    << "# refused (rate_limited) without checking the password. Session resumes with a device\n"
    << "# token are never limited by them.\n"
    << "login_failures_per_window = " << c.login_failures_per_window << "\n"
    << "login_failures_per_source = " << c.login_failures_per_source << "\n"
    << "login_failures_per_account = " << c.login_failures_per_account << "\n"
    << "login_window_seconds = " << c.login_window_seconds << "\n\n"
    << "[limits]\n"
    << "# Messages (1:1 sends and group events) each user may send per minute, and how many may\n"
    << "# come at once after a quiet time; beyond that the client gets \"rate_limited\" with\n"
    << "# retry_after_ms. 0: unlimited. Per user: `parleyd user limit NAME`.\n"
    << "messages_per_minute = " << c.messages_per_minute << "\n"
    << "message_burst = " << c.message_burst << "\n"
    << "# Abuse reports each user may file per hour.\n"
    << "reports_per_hour = " << c.reports_per_hour << "\n"
    << "# to_device requests (key material between a user's own devices) each user may send\n"
    << "# per minute, and at once after a quiet time. 0: unlimited.\n"
    << "to_device_per_minute = " << c.to_device_per_minute << "\n"
    << "to_device_burst = " << c.to_device_burst << "\n"
    << "# New friend requests and new groups each user may make per hour (each may queue work\n"
    << "# for other nodes); beyond that \"rate_limited\" with retry_after_ms.\n"
    << "friend_requests_per_hour = " << c.friend_requests_per_hour << "\n"
    << "groups_per_hour = " << c.groups_per_hour << "\n\n"
    << "[storage]\n"
    << "# Largest the database may grow, in MiB (0: until the disk is full). At the limit the\n"
    << "# node refuses new writes with \"disk_full\" and keeps serving what it has.\n"
    << "max_database_mb = " << c.max_database_mb << "\n\n"
    << "[retention]\n"
    << "# How long messages are kept is set with `parleyd retention set` (default: forever).\n"
    << "# The purge of what is past its lifetime runs every purge_interval_seconds (0: only by\n"
    << "# hand, `parleyd retention purge`), purge_batch rows per short transaction.\n"
    << "purge_interval_seconds = " << c.purge_interval_seconds << "\n"
    << "purge_batch = " << c.purge_batch << "\n";
  return o.str();
}

}  // namespace parley::node
