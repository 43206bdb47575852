#include "parley/node/backup.h"

#include <sodium.h>
#include <sys/stat.h>

#include <cpprest/json.h>
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "data_dir.h"
#include "parley/crypto/secret.h"
#include "parley/crypto/sign.h"
#include "parley/node/config.h"
#include "parley/store/database.h"
#include "parley/store/node_schema.h"

namespace parley::node {

namespace fs = std::filesystem;
namespace json = web::json;

namespace {

constexpr const char* kManifest = "manifest.json";
constexpr const char* kFiles[] = {"parley.db", "node.key", "config.toml"};
// Counters move on by at least this much at a restore (see restore_backup).
constexpr std::int64_t kMinCounterAdvance = 1'000'000;

// BLAKE2b-256 of a file, read in 1 MiB pieces; its size in `bytes`.
Result<std::string> hash_file(const std::string& path, std::int64_t& bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("io", "cannot read " + path);
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 32);
  std::vector<char> buf(1 << 20);
  bytes = 0;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto n = in.gcount();
    if (n <= 0) break;
    crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(buf.data()),
                              static_cast<unsigned long long>(n));
    bytes += n;
  }
  if (in.bad()) return make_error("io", "cannot read " + path);
  unsigned char out[32];
  crypto_generichash_final(&st, out, sizeof out);
  return crypto::hex_encode(std::string_view(reinterpret_cast<const char*>(out), sizeof out));
}

Status copy_private(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) return make_error("io", "cannot copy " + from + " to " + to + ": " + ec.message());
  ::chmod(to.c_str(), 0600);
  return ok_status();
}

Status fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return make_error("io", "cannot open " + path + " to sync it");
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok ? ok_status() : make_error("io", "cannot sync " + path);
}

std::string manifest_text(const BackupManifest& m) {
  json::value v;
  v["format"] = json::value::number(m.format);
  v["node"] = json::value::string(m.node);
  v["public_key"] = json::value::string(m.public_key);
  v["version"] = json::value::string(m.version);
  v["created_ms"] = json::value::number(static_cast<int64_t>(m.created_ms));
  v["schema_version"] = json::value::number(m.schema_version);
  v["epoch"] = json::value::number(static_cast<uint64_t>(m.epoch));
  json::value files = json::value::array(m.files.size());
  for (std::size_t i = 0; i < m.files.size(); ++i) {
    json::value f;
    f["name"] = json::value::string(m.files[i].name);
    f["bytes"] = json::value::number(static_cast<int64_t>(m.files[i].bytes));
    f["blake2b"] = json::value::string(m.files[i].blake2b);
    files[i] = f;
  }
  v["files"] = files;
  return v.serialize() + "\n";
}

Result<BackupManifest> parse_manifest(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error("bad_backup", "no " + path + " (not a parleyd backup?)");
  try {
    const json::value v = json::value::parse(in);
    BackupManifest m;
    m.format = v.at("format").as_integer();
    if (m.format != 1) {
      return make_error("bad_backup", "manifest format " + std::to_string(m.format) +
                                          " is not one this parleyd reads (1)");
    }
    m.node = v.at("node").as_string();
    m.public_key = v.at("public_key").as_string();
    m.version = v.at("version").as_string();
    m.created_ms = v.at("created_ms").as_number().to_int64();
    m.schema_version = v.at("schema_version").as_integer();
    m.epoch = v.at("epoch").as_number().to_uint64();
    for (const auto& f : v.at("files").as_array()) {
      m.files.push_back({f.at("name").as_string(), f.at("bytes").as_number().to_int64(),
                         f.at("blake2b").as_string()});
    }
    return m;
  } catch (const std::exception& e) {
    return make_error("bad_backup", path + " is not a valid manifest: " + e.what());
  }
}

Result<std::optional<std::string>> meta(store::Database& db, const char* key) {
  PARLEY_ASSIGN_OR_RETURN(st, db.prepare("SELECT value FROM node_meta WHERE key = ?"));
  st.bind(1, key);
  PARLEY_ASSIGN_OR_RETURN(row, st.step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(st.column_text(0));
}

Status set_meta(store::Database& db, const char* key, const std::string& value) {
  PARLEY_ASSIGN_OR_RETURN(
      st, db.prepare("INSERT INTO node_meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE "
                     "SET value = excluded.value"));
  return st.bind(1, key).bind(2, value).run();
}

Result<std::uint64_t> epoch_of(store::Database& db) {
  PARLEY_ASSIGN_OR_RETURN(e, meta(db, "epoch"));
  return e ? std::stoull(*e) : std::uint64_t{0};
}

}  // namespace

bool BackupReport::ok() const {
  if (!manifest || checks.empty()) return false;
  for (const auto& c : checks) {
    if (!c.ok) return false;
  }
  return true;
}

Result<BackupManifest> create_backup(const std::string& data_dir, const std::string& dest_dir,
                                     const std::string& version, std::int64_t now_ms) {
  const DataPaths paths{data_dir};
  std::error_code ec;
  if (fs::exists(dest_dir, ec) && !fs::is_empty(dest_dir, ec)) {
    return make_error("exists", dest_dir + " is not empty; a backup goes into a new directory");
  }
  fs::create_directories(dest_dir, ec);
  if (ec) return make_error("io", "cannot create " + dest_dir + ": " + ec.message());
  ::chmod(dest_dir.c_str(), 0700);
  const std::string dest = dest_dir + "/";

  PARLEY_ASSIGN_OR_RETURN(config, load_config(paths.config()));
  PARLEY_ASSIGN_OR_RETURN(key, crypto::load_signing_key(paths.node_key()));
  BackupManifest m;
  m.node = config.name;
  m.public_key = crypto::format_public_key(key.public_key());
  m.version = version;
  m.created_ms = now_ms;
  {
    // A connection of its own: the snapshot is consistent while the core keeps writing.
    PARLEY_ASSIGN_OR_RETURN(db, store::Database::open(paths.database()));
    PARLEY_TRY(db->backup_to(dest + "parley.db"));
    ::chmod((dest + "parley.db").c_str(), 0600);
  }
  {
    PARLEY_ASSIGN_OR_RETURN(copy, store::Database::open(dest + "parley.db"));
    PARLEY_ASSIGN_OR_RETURN(v, copy->schema_version());
    m.schema_version = v;
    PARLEY_ASSIGN_OR_RETURN(e, epoch_of(*copy));
    m.epoch = e;
  }
  PARLEY_TRY(copy_private(paths.node_key(), dest + "node.key"));
  PARLEY_TRY(copy_private(paths.config(), dest + "config.toml"));
  for (const char* name : kFiles) {
    BackupFile f;
    f.name = name;
    PARLEY_ASSIGN_OR_RETURN(h, hash_file(dest + name, f.bytes));
    f.blake2b = h;
    PARLEY_TRY(fsync_path(dest + name));
    m.files.push_back(std::move(f));
  }
  // The manifest last: a directory without one is an interrupted backup.
  PARLEY_TRY(write_private_file(dest + kManifest, manifest_text(m)));
  PARLEY_TRY(fsync_path(dest_dir));
  return m;
}

BackupReport verify_backup(const std::string& dir) {
  BackupReport r;
  auto add = [&r](std::string name, bool ok, std::string detail) {
    r.checks.push_back({std::move(name), ok, std::move(detail)});
  };
  auto m = parse_manifest(dir + "/" + kManifest);
  if (!m.ok()) {
    add("manifest", false, m.error().message);
    return r;
  }
  r.manifest = *m;
  add("manifest", true,
      "node " + m->node + ", schema " + std::to_string(m->schema_version) + ", epoch " +
          std::to_string(m->epoch) + ", written by parleyd " + m->version);
  for (const char* name : kFiles) {
    const auto it = std::find_if(m->files.begin(), m->files.end(),
                                 [&](const BackupFile& f) { return f.name == name; });
    if (it == m->files.end()) {
      add(name, false, "not listed in the manifest");
      continue;
    }
    std::int64_t bytes = 0;
    auto h = hash_file(dir + "/" + name, bytes);
    if (!h.ok()) {
      add(name, false, h.error().message);
    } else if (bytes != it->bytes || *h != it->blake2b) {
      add(name, false,
          "content differs from the manifest (" + std::to_string(bytes) + " bytes, expected " +
              std::to_string(it->bytes) + "): damaged or changed after the backup");
    } else {
      add(name, true, std::to_string(bytes) + " bytes, hash matches");
    }
  }
  {
    store::Database::Options o;
    o.create = false;
    o.read_only = true;
    auto db = store::Database::open(dir + "/parley.db", o);
    if (!db.ok()) {
      add("database", false, db.error().message);
    } else {
      auto st = (*db)->prepare("PRAGMA integrity_check");
      std::string result = st.ok() && st->step().ok() ? st->column_text(0) : "cannot run";
      auto version = (*db)->schema_version();
      const int known = store::node_migrations().back().version;
      if (result != "ok") {
        add("database", false, "integrity_check: " + result);
      } else if (!version.ok() || *version > known) {
        add("database", false,
            "schema " + std::to_string(version.ok() ? *version : -1) +
                " is newer than this parleyd knows (" + std::to_string(known) + ")");
      } else {
        add("database", true, "integrity_check ok, schema " + std::to_string(*version));
      }
    }
  }
  auto key = crypto::load_signing_key(dir + "/node.key");
  if (!key.ok()) {
    add("node key", false, key.error().message);
  } else if (crypto::format_public_key(key->public_key()) != m->public_key) {
    add("node key", false, "node.key is not the key the manifest names");
  } else {
    add("node key", true, m->public_key);
  }
  return r;
}

Result<RestoreResult> restore_backup(const std::string& backup_dir, const std::string& data_dir,
                                     std::int64_t now_ms) {
  const auto report = verify_backup(backup_dir);
  if (!report.ok()) {
    std::string why;
    for (const auto& c : report.checks) {
      if (!c.ok) why += (why.empty() ? "" : "; ") + c.name + ": " + c.detail;
    }
    return make_error("bad_backup", backup_dir + " does not verify (" + why + "); nothing changed");
  }
  const DataPaths paths{data_dir};
  std::error_code ec;
  fs::create_directories(data_dir, ec);
  if (ec) return make_error("io", "cannot create " + data_dir + ": " + ec.message());
  ::chmod(data_dir.c_str(), 0700);
  PARLEY_ASSIGN_OR_RETURN(lock, DirLock::take(paths.lock(), data_dir));

  RestoreResult out;
  out.manifest = *report.manifest;
  // What the directory held is moved aside, never deleted; its epoch counts for the new one.
  std::uint64_t replaced_epoch = 0;
  if (fs::exists(paths.database(), ec)) {
    store::Database::Options o;
    o.create = false;
    if (auto old = store::Database::open(paths.database(), o); old.ok()) {
      if (auto e = epoch_of(**old); e.ok()) replaced_epoch = *e;
    }
  }
  const std::string aside = data_dir + "/replaced-" + std::to_string(now_ms);
  for (const std::string name :
       {"parley.db", "parley.db-wal", "parley.db-shm", "node.key", "config.toml"}) {
    const std::string from = data_dir + "/" + name;
    if (!fs::exists(from, ec)) continue;
    fs::create_directories(aside, ec);
    ::chmod(aside.c_str(), 0700);
    fs::rename(from, aside + "/" + name, ec);
    if (ec) return make_error("io", "cannot move " + from + " aside: " + ec.message());
    out.moved_aside = aside;
  }

  const std::string staging = paths.database() + ".restoring";
  fs::remove(staging, ec);
  PARLEY_TRY(copy_private(backup_dir + "/parley.db", staging));
  {
    PARLEY_ASSIGN_OR_RETURN(db, store::Database::open(staging));
    PARLEY_TRY(store::migrate_node_database(*db));
    PARLEY_ASSIGN_OR_RETURN(tx, store::Transaction::begin(*db));
    // A new epoch above every one this node may have used: the backup's, the replaced
    // directory's, and the restore time in seconds (two restores of one backup differ).
    out.new_epoch = std::max(
        {out.manifest.epoch + 1, replaced_epoch + 1, static_cast<std::uint64_t>(now_ms / 1000)});
    PARLEY_TRY(set_meta(*db, "epoch", std::to_string(out.new_epoch)));
    PARLEY_TRY(set_meta(*db, "restored_ms", std::to_string(now_ms)));
    PARLEY_TRY(set_meta(*db, "restored_from_ms", std::to_string(out.manifest.created_ms)));
    {
      // Any of them may have been handed out after the backup, and the device that made it has
      // used and forgotten its private half: none may be handed out again.
      PARLEY_ASSIGN_OR_RETURN(st, db->prepare("DELETE FROM one_time_prekeys"));
      PARLEY_TRY(st.run());
      out.prekeys_withdrawn = db->changes();
    }
    // Stream seqs, 1:1 conversation numbers and device ids handed out after the backup live on
    // in clients (which recognise events and devices by them): new ones start past them. Nothing
    // tells how many there were; the advance assumes fewer than one per millisecond since the
    // backup, and at least a million. Devices that had everything keep having everything.
    out.counters_advanced_by = std::max(kMinCounterAdvance, now_ms - out.manifest.created_ms);
    for (const char* sql :
         {"INSERT INTO node_meta(key, value) VALUES('device_id_floor', (SELECT coalesce(max(id), "
          "0) FROM devices) + ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
          "UPDATE devices SET cursor = cursor + ?1 WHERE cursor = (SELECT stream_seq FROM users u "
          "WHERE u.id = devices.user_id)",
          "UPDATE users SET stream_seq = stream_seq + ?1",
          "UPDATE conversations SET last_cseq = last_cseq + ?1 WHERE kind != 'group'"}) {
      PARLEY_ASSIGN_OR_RETURN(st, db->prepare(sql));
      PARLEY_TRY(st.bind(1, out.counters_advanced_by).run());
    }
    PARLEY_TRY(tx.commit());
    PARLEY_TRY(db->checkpoint(store::Database::Checkpoint::kTruncate));
  }
  PARLEY_TRY(fsync_path(staging));
  fs::rename(staging, paths.database(), ec);
  if (ec) return make_error("io", "cannot move " + staging + " into place: " + ec.message());
  PARLEY_TRY(copy_private(backup_dir + "/node.key", paths.node_key()));
  PARLEY_TRY(copy_private(backup_dir + "/config.toml", paths.config()));
  if (!fs::exists(paths.admin_token(), ec)) {
    PARLEY_TRY(write_private_file(paths.admin_token(),
                                  crypto::base64_encode(crypto::random_bytes(32)) + "\n"));
  }
  PARLEY_TRY(fsync_path(data_dir));
  return out;
}

}  // namespace parley::node
