// SQLite access for Parley: one Database per connection, RAII statements and transactions,
// versioned migrations and online backup.
//
// Database::open sets WAL mode, synchronous=FULL (a committed transaction survives power loss:
// the node acknowledges a message only after commit), foreign_keys=ON and a busy timeout.
// A Database and its Statements belong to one thread at a time. Errors map SQLite codes to stable
// codes: "disk_full" (SQLITE_FULL), "read_only" (SQLITE_READONLY, or an I/O error with errno
// EROFS), "io_error" (other I/O errors), "conflict" (constraint violations), "busy", "corrupt",
// "storage" (anything else); the message carries sqlite3_errmsg and the OS error. The first three
// are write refusals (write_refused()): the database still serves reads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parley/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace parley::store {

class Database;

// The size of a file in bytes, 0 if it does not exist.
std::int64_t file_bytes(const std::string& path);

// True for the errors of a database that can still be read but not written now: "disk_full",
// "read_only", "io_error". A node keeps serving reads and logins through them.
bool write_refused(const Error& e);

// A prepared statement. Bind indexes start at 1, column indexes at 0. Destruction resets the
// statement and returns it to its Database's cache for the same SQL text.
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  ~Statement();

  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, std::string_view text);  // TEXT
  Statement& bind_blob(int index, std::string_view bytes);
  Statement& bind_null(int index);
  Statement& bind(int index, const std::optional<std::string>& text);  // NULL when empty
  // Disambiguate std::string and literals (inline; forward to the string_view overload).
  Statement& bind(int index, const std::string& text) {
    return bind(index, std::string_view(text));
  }
  Statement& bind(int index, const char* text) { return bind(index, std::string_view(text)); }

  // true: a row is available; false: done. Errors as described above.
  Result<bool> step();
  // Runs to completion (for statements returning no rows).
  Status run();

  std::int64_t column_int64(int index) const;
  std::string column_text(int index) const;  // also for BLOB columns
  bool column_is_null(int index) const;

 private:
  friend class Database;
  Statement(Database* db, sqlite3_stmt* stmt, std::string sql);
  Database* db_;
  sqlite3_stmt* stmt_;
  std::string sql_;
};

struct Migration {
  int version;       // 1, 2, 3, ... consecutive
  const char* name;  // short description, logged
  const char* sql;   // one or more statements
};

class Database {
 public:
  struct Options {
    bool create = true;  // create the file if missing
    bool read_only = false;
    int busy_timeout_ms = 5000;
    // Tests only: open through the fault-injection VFS controlled by this file (fault_vfs.h).
    std::string fault_file;
    // false: no automatic WAL checkpoints by this connection's commits (a Checkpointer runs
    // them on its own thread).
    bool auto_checkpoint = true;
  };

  static Result<std::unique_ptr<Database>> open(const std::string& path, const Options& options);
  static Result<std::unique_ptr<Database>> open(const std::string& path) {
    return open(path, Options{});
  }
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Executes one or more statements without results.
  Status exec(std::string_view sql);
  // Prepares (or takes from the cache) a statement for `sql`.
  Result<Statement> prepare(std::string_view sql);

  std::int64_t last_insert_rowid() const;
  int changes() const;

  // PRAGMA user_version.
  Result<int> schema_version();
  // Applies every migration whose version is above the current user_version, each in its own
  // transaction together with the user_version bump. Fails with "schema_too_new" if the file was
  // written by a newer Parley.
  Status migrate(const std::vector<Migration>& migrations);

  // Online backup to `dest_path` (written to dest_path + ".tmp", fsynced, then renamed), giving a
  // consistent snapshot while other connections keep writing.
  Status backup_to(const std::string& dest_path);
  // Copies WAL content into the database file. kPassive never waits for other connections;
  // kTruncate waits for them (busy timeout) and empties the WAL file.
  enum class Checkpoint { kPassive, kTruncate };
  Status checkpoint(Checkpoint mode);
  // Database file plus WAL file size in bytes.
  std::int64_t size_bytes() const;
  const std::string& path() const { return path_; }
  sqlite3* raw() { return db_; }

  // Group commit: between begin_batch() and end_batch() every Transaction is a savepoint inside
  // one outer transaction, so many requests share one commit (and one fsync). A transaction's
  // rollback undoes only its own writes. end_batch() commits (or, with `commit` false, rolls
  // back); its error means nothing of the batch is stored.
  Status begin_batch();
  Status end_batch(bool commit = true);
  bool in_batch() const { return in_batch_; }
  // A batch the database rolled back by itself (SQLITE_FULL, an I/O error): end_batch() will
  // report it; nothing written since begin_batch() is kept.
  bool batch_broken() const;

 private:
  friend class Statement;
  explicit Database(sqlite3* db, std::string path);
  void give_back(std::string sql, sqlite3_stmt* stmt);
  Error error_from(int rc) const;
  sqlite3* db_;
  std::string path_;
  std::vector<std::pair<std::string, sqlite3_stmt*>> cache_;
  bool in_batch_ = false;
  std::uint64_t savepoints_ = 0;
  friend class Transaction;
};

// BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless commit() succeeded.
// Inside a batch (Database::begin_batch) it is a SAVEPOINT instead, released by commit().
class Transaction {
 public:
  static Result<Transaction> begin(Database& db);
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  Status commit();

 private:
  Transaction(Database* db, std::string savepoint) : db_(db), savepoint_(std::move(savepoint)) {}
  Database* db_;
  std::string savepoint_;  // empty: a transaction of its own
};

}  // namespace parley::store
