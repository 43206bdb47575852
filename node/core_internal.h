// Private types shared by the core_*.cpp files. Not part of the node's public surface.
#pragma once

#include <optional>

#include "parley/node/core.h"
#include "parley/store/database.h"

namespace parley::node {

struct Core::Conn {
  ConnId id = 0;
  std::shared_ptr<Outlet> outlet;
  std::string source;
  std::int64_t user_id = 0;  // 0 until authenticated
  std::string address;
  std::int64_t device_id = 0;
  std::int64_t last_frame_ms = 0;      // when the last complete frame arrived
  bool logging_in = false;             // a login is being verified
  std::deque<wire::Message> deferred;  // requests received during login
  std::int64_t pushed_upto = 0;        // highest stream seq sent on this connection
  bool live = false;                   // backlog done; new events are pushed at once
  bool awaiting_drain = false;
  bool closed = false;
  // pushed_upto before the current batch's first push (-1: no push in this batch). A batch
  // whose commit fails rewinds to it, so committed events are pushed again and nothing is lost.
  std::int64_t batch_floor = -1;
};

struct Core::UserRow {
  std::int64_t id = 0;
  std::string name;
  std::string password_hash;
  bool suspended = false;
  bool deactivated = false;
  std::int64_t stream_seq = 0;
};

// A group event's fields as clients see them (stream `gev` events, group_history).
wire::MapWriter conv_event_fields(const conv::Event& e);

// Lookups of users that do not exist, per asker and minute: enough for typos, too few to
// enumerate an organization.
inline constexpr std::uint32_t kDirectoryMissesPerWindow = 30;
inline constexpr std::int64_t kDirectoryMissWindowMs = 60'000;

// Abuse reports are counted per reporter in windows of an hour (limits.reports_per_hour).
inline constexpr std::int64_t kReportWindowMs = 3'600'000;

// The most one answer carrying history (history, group_history) holds in encoded entries: it
// ends early with `more` instead (spec/client-protocol.md sections 8 and 12). Far below
// client.max_outbound_bytes (at least 2 MiB), so one answer never makes a slow consumer.
inline constexpr std::size_t kMaxAnswerBytes = 1u << 20;

// Events sent per page while a connection works through its backlog.
inline constexpr int kBacklogPage = 64;

}  // namespace parley::node
