// The node's configuration: DATA/config.toml, written commented by `parleyd init` and read by every
// `parleyd` command. Unknown keys are rejected so a typo never silently falls back to a default.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "parley/crypto/password.h"
#include "parley/result.h"

namespace parley::node {

struct HostPort {
  std::string host;
  std::uint16_t port = 0;
  std::string str() const { return host + ":" + std::to_string(port); }
};
Result<HostPort> parse_host_port(std::string_view text);

enum class DirectMessagePolicy { kFriends, kOrganization, kAnyone };
Result<DirectMessagePolicy> parse_dm_policy(std::string_view text);
const char* to_string(DirectMessagePolicy policy);

struct NodeConfig {
  std::string name;  // the node's domain, e.g. example.org
  HostPort client_listen{"127.0.0.1", 7420};
  HostPort federation_listen{"127.0.0.1", 7421};
  HostPort admin_listen{"127.0.0.1", 7422};
  // metrics.listen: /metrics, /health, /ready (plain HTTP, no authentication); unset: off.
  // `parleyd init` writes 127.0.0.1:7423.
  std::optional<HostPort> metrics_listen;
  bool metrics_allow_remote = false;

  std::uint32_t max_frame_bytes = 256 * 1024;
  std::uint32_t max_body_bytes = 64 * 1024;
  std::uint32_t heartbeat_timeout_seconds = 60;
  std::uint32_t max_outbound_frames = 1024;
  std::uint32_t max_connections = 10000;
  // Connections from one source IP that have not authenticated yet (client-protocol.md §1).
  std::uint32_t max_unauthenticated_per_source = 64;
  // Bytes queued towards one connection (frames with their headers, answers and pushes) before
  // it is closed as a slow consumer, and authenticated connections per user: together they bound
  // what one user's connections hold (client-protocol.md §4).
  std::uint32_t max_outbound_bytes = 8u << 20;
  std::uint32_t max_connections_per_user = 16;
  std::uint32_t max_database_mb = 0;  // storage.max_database_mb; 0: no limit of our own
  // storage.test_fault_file (tests and benchmarks only): the database is opened through the
  // fault-injection VFS that this file controls (store/fault_vfs.h); empty: off.
  std::string test_fault_file;
  // The client port speaks plain TCP; a non-loopback listener needs this set explicitly (a TLS
  // terminator in front of the node). Until then only loopback addresses are accepted.
  bool allow_plaintext_remote = false;

  DirectMessagePolicy direct_messages = DirectMessagePolicy::kFriends;

  // Federation: "open" (any node may federate; keys pinned on first use) or "allowlist" (only
  // peers added with `parleyd peer add`). Plain http:// peers and listener only when allowed.
  std::string federation_policy = "open";
  bool federation_allow_plaintext = false;
  // TLS for the federation listener (PEM files; relative paths are relative to the data
  // directory). Without them the listener only starts with federation_allow_plaintext.
  std::string federation_tls_cert;
  std::string federation_tls_key;
  // Extra trust anchors (PEM) for peers' certificates, on top of the system's.
  std::string federation_tls_ca;
  // What /.well-known/parley advertises; empty: https://NAME:PORT of federation.listen.
  std::string federation_public_url;
  // Where a peer without a static entry is discovered; "{name}" is replaced by its name.
  std::string federation_discovery_url = "https://{name}/.well-known/parley";
  // Admission control per origin node: requests per second and requests in flight.
  std::uint32_t federation_requests_per_second = 50;
  std::uint32_t federation_concurrent_per_origin = 4;
  // The federation listener's own bounds (node/http_server.h): connections in total and per
  // source address, the time a request's body may take after its header (408 beyond), and how
  // long a kept-alive connection may stay quiet.
  std::uint32_t federation_max_connections = 512;
  std::uint32_t federation_max_connections_per_source = 32;
  std::uint32_t federation_request_timeout_seconds = 30;
  std::uint32_t federation_idle_timeout_seconds = 30;
  // Whether discovery may lead to loopback, private or other non-public addresses (test
  // networks only): names and URLs that come from other nodes or users are otherwise refused
  // when they resolve there, so the node cannot be used to probe its own network.
  bool federation_allow_private_addresses = false;

  crypto::PasswordStrength password_strength = crypto::PasswordStrength::kInteractive;
  std::uint32_t login_failures_per_window = 5;    // per (address, source IP)
  std::uint32_t login_failures_per_source = 20;   // per source IP, all addresses
  std::uint32_t login_failures_per_account = 50;  // per address, all sources
  std::uint32_t login_window_seconds = 60;

  // [limits]: messages (send, group_event) per user and minute, with a burst allowance; 0:
  // unlimited. Per-user overrides: `parleyd user limit`. Abuse reports per user and hour.
  std::uint32_t messages_per_minute = 600;
  std::uint32_t message_burst = 300;
  std::uint32_t reports_per_hour = 20;
  // [limits], client port: to_device requests per user and minute, with a burst; 0: unlimited.
  std::uint32_t to_device_per_minute = 120;
  std::uint32_t to_device_burst = 60;

  // Federation work one user can start (spec/federation.md section 4, "Limits"): new friend
  // requests and groups created per user and hour ([limits]), and how long an event may wait
  // in the outbound queue before it is dropped (federation.queue_lifetime_seconds).
  std::uint32_t friend_requests_per_hour = 100;
  std::uint32_t groups_per_hour = 20;
  std::uint32_t federation_queue_lifetime_seconds = 7 * 24 * 3600;

  std::string log_level = "info";

  // retention.*: how often the scheduled purge runs (0: only `parleyd retention purge`) and how
  // many rows or pages one step of it touches (one short transaction each). The lifetimes
  // themselves are kept in the database (`parleyd retention set`).
  std::uint32_t purge_interval_seconds = 3600;
  std::uint32_t purge_batch = 1000;
};

// Paths inside a data directory.
struct DataPaths {
  std::string dir;
  std::string config() const { return dir + "/config.toml"; }
  std::string database() const { return dir + "/parley.db"; }
  std::string node_key() const { return dir + "/node.key"; }
  std::string admin_token() const { return dir + "/admin.token"; }
  std::string lock() const { return dir + "/parleyd.lock"; }
};

// Reads DATA/config.toml; relative file paths in it are made relative to its directory.
Result<NodeConfig> load_config(const std::string& path);
// The URL scheme the federation listener serves: "https" with a certificate, else "http".
std::string federation_scheme(const NodeConfig& config);
// A reload (SIGHUP) applies what can change while serving: node.log_level, policy.*,
// federation.policy and its admission limits, the client limits (max_frame_bytes,
// max_body_bytes, heartbeat_timeout_seconds, max_outbound_frames, max_connections), the
// login limits, [limits] (send rates, reports) and the purge schedule (retention.*).
// take_reloadable copies those from `fresh` into
// `live`; restart_only_changes names the keys that differ but take effect only at the next start
// (listen addresses, TLS files, URLs, storage, password hashing).
void take_reloadable(NodeConfig& live, const NodeConfig& fresh);
std::vector<std::string> restart_only_changes(const NodeConfig& running, const NodeConfig& fresh);

// What /.well-known/parley names as this node's federation base URL.
std::string federation_public_url(const NodeConfig& config);
// Refuses exposures that are unsafe by default: a non-loopback admin API, or a non-loopback
// plaintext client listener without client.allow_plaintext_remote.
Status check_exposure(const NodeConfig& config);
// True for an IP address literal in 127.0.0.0/8 or ::1 (or ::ffff:127.0.0.0/104), and for
// "localhost"; every other text, e.g. the host name "127.evil.example", is not loopback.
bool is_loopback(const std::string& host);
// The commented TOML text `parleyd init` writes.
std::string render_config(const NodeConfig& config);

}  // namespace parley::node
