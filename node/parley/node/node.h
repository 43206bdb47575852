// Running a node: `parleyd init` creates a data directory, `parleyd serve` runs the node in it.
//
// A data directory holds config.toml, node.key (0600), admin.token (0600), parley.db (+WAL) and
// parleyd.lock. serve() takes an exclusive lock on parleyd.lock so a second instance on the same
// directory refuses to start, and returns when SIGINT or SIGTERM arrive, after closing client
// connections with `bye shutdown`, finishing queued core work and closing the database.
#pragma once

#include <optional>
#include <string>

#include "parley/node/config.h"
#include "parley/result.h"

namespace parley::node {

struct InitOptions {
  std::string data_dir;
  std::string name;
  std::optional<HostPort> client_listen, federation_listen, admin_listen, metrics_listen;
  std::optional<DirectMessagePolicy> direct_messages;
  std::optional<crypto::PasswordStrength> password_strength;
  bool allow_plaintext_remote = false;
};

struct InitResult {
  std::string public_key;  // "ed25519:..."
  NodeConfig config;
};

// Fails with "exists" if the directory already holds a node.
Result<InitResult> init_node(const InitOptions& options);

// Replaces the node key while the node is stopped (fails with "locked" while it serves). The old
// public key stays in the key document with its expiry, so signatures it made stay verifiable.
// Returns the new public key ("ed25519:...").
Result<std::string> rotate_node_key(const std::string& data_dir);

// Runs until a signal; returns an error when the node cannot start.
Status serve(const std::string& data_dir);

// The admin token of a data directory (trimmed).
Result<std::string> read_admin_token(const std::string& data_dir);

}  // namespace parley::node
