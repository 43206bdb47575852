// A device's local profile: a directory (mode 0700) holding profile.db (0600) with the session
// (server, address, device id, token), the stream cursor and the local message history.
// Storing stream events is idempotent (by seq, and messages by conv+cseq), so events pushed again
// after a crash are harmless. One thread at a time.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "parley/message.h"
#include "parley/result.h"
#include "parley/store/database.h"

namespace parley::client {

struct StoredMessage {
  std::string conv;
  std::int64_t cseq = 0;
  std::string msg_id, from, to, body;
  std::int64_t sent_ms = 0;
  std::string status;      // own messages: sent, delivered, read; others': received
  std::string e2e = "ok";  // or why the message could not be decrypted (body empty then)
  // Place in the conversation's order, the same on every node (spec/ordering.md section 7).
  std::int64_t ord_sum = 0;
  std::string ord_actor;
  std::int64_t ord_seq = 0;
};

class Profile {
 public:
  static Result<std::unique_ptr<Profile>> open(const std::string& dir);

  Result<std::string> get(const std::string& key);  // "" when unset
  Status set(const std::string& key, const std::string& value);
  Status clear_session();

  // Stores one `ev` frame. Returns true when it was new (never seen before). Message bodies go
  // to the pending table (end-to-end ciphertext) until E2e::process_pending opens them.
  Result<bool> store_event(const wire::View& ev, const std::string& me);
  // Adds an opened message to the history (`e2e`: "ok", or why it could not be opened). Own
  // messages ("sent") take the status of receipts that arrived before them.
  Status add_message(const StoredMessage& m, const std::string& e2e);
  Result<std::vector<StoredMessage>> history(const std::string& conv, int limit);
  Result<std::optional<StoredMessage>> find_message(const std::string& conv, std::int64_t cseq);
  // A group message by its event id.
  Result<std::optional<StoredMessage>> find_by_id(const std::string& conv,
                                                  const std::string& msg_id);

  store::Database& db() { return *db_; }

 private:
  explicit Profile(std::unique_ptr<store::Database> db) : db_(std::move(db)) {}
  Status mark_receipt(const std::string& conv, std::int64_t cseq, const std::string& status);
  std::unique_ptr<store::Database> db_;
};

}  // namespace parley::client
