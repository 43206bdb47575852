// End-to-end encryption for one device (spec/crypto.md): its keys in the profile, publishing
// them, trust in other users' identity keys (first use, then changes block sending until
// accepted), sealing a message for every trusted device of the recipient and of the user's own
// other devices, and opening received messages. Session state is saved in the same profile
// transaction as the message it produced or consumed. Uses the Session for node requests; one
// thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "parley/client/envelope.h"
#include "parley/client/profile.h"
#include "parley/crypto/box.h"
#include "parley/result.h"

namespace parley::client {

class Session;

struct DeviceInfo {
  std::uint64_t device = 0;
  bool trusted = false;     // named by the user's identity-signed device list
  bool self = false;        // this device
  std::string fingerprint;  // of its signing key, for humans
};

class E2e {
 public:
  explicit E2e(Profile& profile) : profile_(profile) {}

  // Makes sure this device has keys and that the node has them (identity and device list on the
  // user's first device; otherwise this device's certificate and prekeys, waiting for approval
  // from a device that holds the identity key). Tops up one-time prekeys. Returns a notice for
  // the user, or "".
  // With `new_identity` (all devices lost) this device makes a new identity key and a device list
  // naming only itself; other users see the change and must accept it.
  Result<std::string> publish(Session& s, bool new_identity = false);

  // The body for a 1:1 message to `peer` with `msg_id`: one ciphertext per trusted device of the
  // peer and of this user's other devices. Errors: "identity_changed" (until `trust`),
  // "not_found" (the peer has no keys), "not_approved" (this device is not in its user's list).
  Result<std::string> seal(Session& s, const std::string& peer, const std::string& msg_id,
                           const std::string& plaintext);

  // The body of a message to group `conv` (spec/crypto.md section 8a): one sender-key
  // encryption, plus this device's chain for the member devices that do not hold it yet (over
  // their pairwise sessions); a new chain when a device that held it is no longer a member's
  // trusted device (a member left or was removed). Members without keys are skipped; members
  // whose node does not answer within kGroupDirectoryWaitMs are owed a key handover (below); a
  // changed identity key of any member stops it ("identity_changed").
  Result<std::string> seal_group(Session& s, const std::string& conv,
                                 const std::vector<std::string>& members,
                                 const std::string& plaintext);
  // After the node stored a group message (event id `msg_id`): keeps its plaintext for this
  // device's history, and records which devices now hold this device's chain.
  Status remember_sent(const std::string& msg_id, const std::string& conv,
                       const std::string& plaintext, const std::string& body);
  // How long a group send waits for other nodes' directory answers (device lists, prekey
  // claims). A member whose node has not answered by then is sent to later: the message goes
  // out to the others at once and this device's chain is handed to that member's devices when
  // their node answers again (a key handover, spec/crypto.md section 8a; process_pending tries
  // the handovers that are due). Kept in the profile, so a restart loses none.
  static constexpr int kGroupDirectoryWaitMs = 3000;

  // Opens every pending message in stream order, adds them to the history and calls `opened`
  // with each (body = plaintext). Messages that cannot be opened are kept with the reason; a
  // group message whose sender's chain this device lacks is opened again once a key handover
  // brings it. Then hands this device's own chains over where that is due.
  using Opened = std::function<void(const StoredMessage& m, const std::string& e2e)>;
  Status process_pending(Session& s, const Opened& opened);

  Result<std::vector<DeviceInfo>> devices(Session& s, const std::string& user);
  // Adds device `device` (which published its certificate) to this user's signed device list.
  Status approve(Session& s, std::uint64_t device);
  // Replaces this device's signed prekey when it is older than a week (or now, with `force`);
  // old ones stay usable for 30 days so sessions started meanwhile still open. Returns whether
  // it rotated.
  Result<bool> rotate_signed_prekey(Session& s, bool force);
  // Takes `device` off the list (lost or retired): nobody encrypts to it any more.
  Status remove_device(Session& s, std::uint64_t device);
  // The safety number with `peer` (fetching and pinning its identity key on first use).
  Result<std::string> safety_number(Session& s, const std::string& peer);
  // Accepts a peer's changed identity key.
  Status trust(Session& s, const std::string& peer);

 private:
  Status ensure_device_keys();
  Result<std::string> self_value(const std::string& key);
  Status set_self_value(const std::string& key, const std::string& value);
  struct Listed;
  struct Me;
  // This device's keys (made if missing), node device id and address.
  Result<Me> me(const Session& s);
  // This user's current device list, signed by the identity key this device holds.
  struct OwnList;
  Result<OwnList> own_list(Session& s);
  Status publish_list(Session& s, OwnList& own);  // with the version raised
  // Starts sessions with the job's targets that have none (X3DH from claimed bundles, all claims
  // at once), encrypts the job's plaintext for each, and saves the sessions together with
  // whatever `in_transaction` writes. Targets whose claim got no answer get no entry.
  struct SealJob;
  Status seal_for(Session& s, const crypto::DhKeyPair& my_dh, std::uint64_t my_device, SealJob& job,
                  const std::function<Status(const Envelope&)>& in_transaction);
  // Hands this device's identity key to `device`, another approved device of the user.
  Status send_identity(Session& s, std::uint64_t device);
  struct OpenedEntry;
  // Opens an envelope entry for this device from `from`'s device (X3DH as responder when it
  // starts a session); the session state is saved with the message by save_opened.
  Result<OpenedEntry> open_entry(Session& s, const std::string& from, std::int64_t sender_device,
                                 const EnvelopeEntry& entry,
                                 std::map<std::string, std::vector<Listed>>& lists);
  Status save_opened(const std::string& from, std::int64_t sender_device, const OpenedEntry& o);
  Result<std::vector<Listed>> trusted_devices(Session& s, const std::string& user,
                                              bool require_trusted);
  // The same for several users, asked at once; a user whose node has not answered within
  // `wait_ms` is treated as unreachable (the list verified last time, if any). With `lookup`,
  // its `claim` users are asked with keys_claim instead (no session with them yet: one round
  // trip gives the list and the prekeys), and it tells who did not answer.
  struct Lookup;
  Result<std::map<std::string, Result<std::vector<Listed>>>> trusted_devices_of(
      Session& s, const std::vector<std::string>& users, bool require_trusted, int wait_ms,
      Lookup* lookup = nullptr);
  // The trusted devices in a keys_query or keys_claim answer (or, when the node was
  // unreachable, in the list verified last time); pins the identity key on first use.
  Result<std::vector<Listed>> devices_from_answer(const std::string& user,
                                                  const Result<wire::Message>& answer,
                                                  bool require_trusted);
  // Whether this device has a session with any device of `user`.
  Result<bool> has_session_with(const std::string& user);
  // Group messages and key handovers (e2e_group.cpp).
  struct OpenedGroup;
  Result<OpenedGroup> open_group(Session& s, const StoredMessage& m, std::int64_t sender_device,
                                 const std::string& body,
                                 std::map<std::string, std::vector<Listed>>& lists);
  // Saves what open_group found (inside the caller's transaction); messages it could open now
  // that a chain arrived are appended to `reopened`.
  Status save_group(std::int64_t seq, const StoredMessage& m, std::int64_t sender_device,
                    const std::string& body, OpenedGroup& g, std::vector<StoredMessage>& reopened);
  Status open_pending_messages(Session& s, const Opened& opened);
  Status hand_over(Session& s);
  Profile& profile_;
};

}  // namespace parley::client
