#include "parley/store/database.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "parley/store/fault_vfs.h"

namespace parley::store {

namespace {

Error sqlite_error(int rc, const std::string& message, int os_errno = 0) {
  const std::string os = os_errno ? std::string(" (") + std::strerror(os_errno) + ")" : "";
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return make_error("disk_full", "disk full: " + message + os);
    case SQLITE_READONLY:
      return make_error("read_only", "storage is read-only: " + message + os);
    case SQLITE_IOERR:
      if (os_errno == EROFS) {
        return make_error("read_only", "storage is read-only: " + message + os);
      }
      return make_error("io_error", "storage I/O error: " + message + os);
    case SQLITE_CONSTRAINT:
      return make_error("conflict", message);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return make_error("busy", message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return make_error("corrupt", message);
    default:
      return make_error("storage", message);
  }
}

// The OS error behind a failed write: what SQLite recorded, else what the fault-injection VFS
// injected, else EROFS if the database's file system is mounted read-only (SQLite does not
// record the OS error of a failed commit).
int os_error_of(int rc, sqlite3* db, const std::string& path) {
  const int primary = rc & 0xff;
  if (primary != SQLITE_IOERR && primary != SQLITE_FULL && primary != SQLITE_READONLY) return 0;
  if (const int e = sqlite3_system_errno(db); e != 0) return e;
  if (const int e = fault_vfs_errno(); e != 0) return e;
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  struct statvfs fs {};
  if (::statvfs(dir.c_str(), &fs) == 0 && (fs.f_flag & ST_RDONLY)) return EROFS;
  return 0;
}

}  // namespace

std::int64_t file_bytes(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::int64_t>(st.st_size) : 0;
}

bool write_refused(const Error& e) {
  return e.code == "disk_full" || e.code == "read_only" || e.code == "io_error";
}

Statement::Statement(Database* db, sqlite3_stmt* stmt, std::string sql)
    : db_(db), stmt_(stmt), sql_(std::move(sql)) {}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_), stmt_(other.stmt_), sql_(std::move(other.sql_)) {
  other.stmt_ = nullptr;
}

Statement::~Statement() {
  if (!stmt_) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  db_->give_back(std::move(sql_), stmt_);
}

Statement& Statement::bind(int index, std::int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
  sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::bind_blob(int index, std::string_view bytes) {
  sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::bind_null(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}

Statement& Statement::bind(int index, const std::optional<std::string>& text) {
  return text ? bind(index, std::string_view(*text)) : bind_null(index);
}

Result<bool> Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_->error_from(rc);
}

Status Statement::run() {
  for (;;) {
    PARLEY_ASSIGN_OR_RETURN(row, step());
    if (!row) return ok_status();
  }
}

std::int64_t Statement::column_int64(int index) const { return sqlite3_column_int64(stmt_, index); }

std::string Statement::column_text(int index) const {
  const void* p = sqlite3_column_blob(stmt_, index);
  const int n = sqlite3_column_bytes(stmt_, index);
  return p ? std::string(static_cast<const char*>(p), static_cast<std::size_t>(n)) : std::string();
}

bool Statement::column_is_null(int index) const {
  return sqlite3_column_type(stmt_, index) == SQLITE_NULL;
}

Database::Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

Database::~Database() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  cache_.clear();
  sqlite3_close_v2(db_);
}

Result<std::unique_ptr<Database>> Database::open(const std::string& path, const Options& o) {
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_NOMUTEX;
  flags |= o.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (o.create && !o.read_only) flags |= SQLITE_OPEN_CREATE;
  const char* vfs = nullptr;
  if (!o.fault_file.empty()) {
    PARLEY_ASSIGN_OR_RETURN(name, fault_vfs(o.fault_file));
    vfs = name;
  }
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, vfs);
  if (rc != SQLITE_OK) {
    std::string msg = "cannot open " + path + ": " + (raw ? sqlite3_errmsg(raw) : "out of memory");
    sqlite3_close_v2(raw);
    return sqlite_error(rc, msg);
  }
  std::unique_ptr<Database> db(new Database(raw, path));
  sqlite3_busy_timeout(raw, o.busy_timeout_ms);
  sqlite3_extended_result_codes(raw, 1);
  if (!o.read_only) {
    PARLEY_TRY(db->exec("PRAGMA journal_mode=WAL"));
    if (!o.auto_checkpoint) PARLEY_TRY(db->exec("PRAGMA wal_autocheckpoint=0"));
  }
  // Savepoints (group commit, Transaction inside a batch) journal into temporary storage: keep it
  // in memory, and give the page cache room for a batch's pages (16 MiB).
  PARLEY_TRY(
      db->exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY; "
               "PRAGMA cache_size=-16384;"));
  return db;
}

Error Database::error_from(int rc) const {
  return sqlite_error(rc, sqlite3_errmsg(db_), os_error_of(rc, db_, path_));
}

Status Database::exec(std::string_view sql) {
  const std::string s(sql);
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    return sqlite_error(rc, msg, os_error_of(rc, db_, path_));
  }
  return ok_status();
}

Result<Statement> Database::prepare(std::string_view sql) {
  for (auto it = cache_.begin(); it != cache_.end(); ++it) {
    if (it->first == sql) {
      sqlite3_stmt* stmt = it->second;
      std::string text = std::move(it->first);
      cache_.erase(it);
      return Statement(this, stmt, std::move(text));
    }
  }
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return error_from(rc);
  return Statement(this, stmt, std::string(sql));
}

void Database::give_back(std::string sql, sqlite3_stmt* stmt) {
  cache_.emplace_back(std::move(sql), stmt);
}

std::int64_t Database::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
int Database::changes() const { return sqlite3_changes(db_); }

Result<int> Database::schema_version() {
  PARLEY_ASSIGN_OR_RETURN(st, prepare("PRAGMA user_version"));
  PARLEY_ASSIGN_OR_RETURN(row, st.step());
  return row ? static_cast<int>(st.column_int64(0)) : 0;
}

Status Database::migrate(const std::vector<Migration>& migrations) {
  PARLEY_ASSIGN_OR_RETURN(current, schema_version());
  const int highest = migrations.empty() ? 0 : migrations.back().version;
  if (current > highest) {
    return make_error("schema_too_new", path_ + " has schema version " + std::to_string(current) +
                                            " but this parleyd knows only up to " +
                                            std::to_string(highest) + "; upgrade parleyd");
  }
  for (const auto& m : migrations) {
    if (m.version <= current) continue;
    PARLEY_ASSIGN_OR_RETURN(tx, Transaction::begin(*this));
    PARLEY_TRY(exec(m.sql));
    PARLEY_TRY(exec("PRAGMA user_version = " + std::to_string(m.version)));
    PARLEY_TRY(tx.commit());
  }
  return ok_status();
}

Status Database::backup_to(const std::string& dest_path) {
  const std::string tmp = dest_path + ".tmp";
  std::remove(tmp.c_str());
  sqlite3* dest = nullptr;
  int rc = sqlite3_open_v2(tmp.c_str(), &dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_close_v2(dest);
    return sqlite_error(rc, "cannot create " + tmp);
  }
  sqlite3_backup* b = sqlite3_backup_init(dest, "main", db_, "main");
  if (!b) {
    std::string msg = sqlite3_errmsg(dest);
    sqlite3_close_v2(dest);
    std::remove(tmp.c_str());
    return make_error("storage", "backup failed: " + msg);
  }
  rc = sqlite3_backup_step(b, -1);
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE) {
    std::string msg = sqlite3_errstr(rc);
    sqlite3_close_v2(dest);
    std::remove(tmp.c_str());
    return sqlite_error(rc, "backup failed: " + msg);
  }
  // A backup is a single self-contained file: no WAL beside it.
  sqlite3_exec(dest, "PRAGMA journal_mode=DELETE", nullptr, nullptr, nullptr);
  sqlite3_close_v2(dest);
  const int fd = ::open(tmp.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  if (std::rename(tmp.c_str(), dest_path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return make_error("io", "cannot rename the backup to " + dest_path);
  }
  return ok_status();
}

Status Database::checkpoint(Checkpoint mode) {
  const int rc = sqlite3_wal_checkpoint_v2(
      db_, nullptr,
      mode == Checkpoint::kTruncate ? SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE,
      nullptr, nullptr);
  if (rc != SQLITE_OK) return error_from(rc);
  return ok_status();
}

std::int64_t Database::size_bytes() const { return file_bytes(path_) + file_bytes(path_ + "-wal"); }

Status Database::begin_batch() {
  if (in_batch_) return make_error("internal", "a batch is already open");
  PARLEY_TRY(exec("BEGIN IMMEDIATE"));
  in_batch_ = true;
  return ok_status();
}

bool Database::batch_broken() const { return in_batch_ && sqlite3_get_autocommit(db_); }

Status Database::end_batch(bool commit) {
  if (!in_batch_) return make_error("internal", "no batch is open");
  in_batch_ = false;
  // SQLite may have rolled the whole transaction back itself (a full disk, an I/O error).
  if (sqlite3_get_autocommit(db_)) {
    return make_error("storage", "the batch was rolled back by the database");
  }
  if (!commit) return exec("ROLLBACK");
  auto s = exec("COMMIT");
  if (!s.ok()) (void)exec("ROLLBACK");
  return s;
}

Result<Transaction> Transaction::begin(Database& db) {
  if (!db.in_batch_) {
    PARLEY_TRY(db.exec("BEGIN IMMEDIATE"));
    return Transaction(&db, "");
  }
  if (sqlite3_get_autocommit(db.db_)) {
    // The batch's transaction is gone (rolled back by SQLite): refuse rather than autocommit.
    return make_error("storage", "the database rolled back the current batch");
  }
  std::string name = "t" + std::to_string(++db.savepoints_);
  PARLEY_TRY(db.exec("SAVEPOINT " + name));
  return Transaction(&db, std::move(name));
}

Transaction::Transaction(Transaction&& other) noexcept
    : db_(other.db_), savepoint_(std::move(other.savepoint_)) {
  other.db_ = nullptr;
}

Transaction::~Transaction() {
  if (!db_) return;
  if (savepoint_.empty()) {
    (void)db_->exec("ROLLBACK");
  } else if (!sqlite3_get_autocommit(db_->db_)) {
    (void)db_->exec("ROLLBACK TO " + savepoint_ + "; RELEASE " + savepoint_);
  }
}

Status Transaction::commit() {
  if (!db_) return make_error("internal", "transaction already finished");
  Database* db = db_;
  auto s = db->exec(savepoint_.empty() ? "COMMIT" : "RELEASE " + savepoint_);
  if (s.ok()) db_ = nullptr;
  return s;
}

}  // namespace parley::store
