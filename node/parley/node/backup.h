// Backups of a node (spec/storage.md, "Backups"): a directory holding a consistent snapshot of
// parley.db (SQLite online backup, taken while the node serves), node.key, config.toml and
// manifest.json (written last: what the node was, and each file's size and BLAKE2b-256).
//
// create_backup runs in the serving node (the admin API); verify_backup and restore_backup run
// without it. A restore installs the backup in a data directory no node serves (the lock), moving
// what was there aside, and then makes the restored state safe to serve: it raises the node's
// epoch (peers then count its federation events anew, and its conversation actors are new),
// withdraws every one-time prekey (any of them may have been handed out after the backup), and
// moves device ids and the users' stream and 1:1 conversation counters past anything handed out
// after it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "parley/result.h"

namespace parley::node {

struct BackupFile {
  std::string name;  // parley.db, node.key, config.toml
  std::int64_t bytes = 0;
  std::string blake2b;  // hex BLAKE2b-256 of the content
};

struct BackupManifest {
  int format = 1;
  std::string node;        // the node's name
  std::string public_key;  // "ed25519:..." of node.key
  std::string version;     // parleyd that wrote it
  std::int64_t created_ms = 0;
  int schema_version = 0;
  std::uint64_t epoch = 0;
  std::vector<BackupFile> files;
};

// Writes a backup of the node in `data_dir` into `dest_dir`, which must not exist or be empty
// (created 0700). Errors: "exists", "io", the database's.
Result<BackupManifest> create_backup(const std::string& data_dir, const std::string& dest_dir,
                                     const std::string& version, std::int64_t now_ms);

struct BackupCheck {
  std::string name;
  bool ok = false;
  std::string detail;
};

struct BackupReport {
  std::optional<BackupManifest> manifest;
  std::vector<BackupCheck> checks;
  bool ok() const;
};

// Reads `dir` only: manifest, every file's size and hash, the database's integrity_check and
// schema, the node key against the manifest.
BackupReport verify_backup(const std::string& dir);

struct RestoreResult {
  BackupManifest manifest;
  std::uint64_t new_epoch = 0;
  std::int64_t prekeys_withdrawn = 0;
  std::int64_t counters_advanced_by = 0;
  std::string moved_aside;  // where the replaced files went ("" if there were none)
};

// Restores the backup in `backup_dir` into `data_dir`. Errors: "locked" (a node serves it),
// "bad_backup" (verification failed; nothing changed), "io".
Result<RestoreResult> restore_backup(const std::string& backup_dir, const std::string& data_dir,
                                     std::int64_t now_ms);

}  // namespace parley::node
