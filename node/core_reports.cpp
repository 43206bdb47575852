// Abuse reports: a user reports a message of a conversation they are in (client request
// `report`, spec/client-protocol.md section 14); admins list, read and resolve them
// (spec/admin-api.md). The reported text is stored only when the reporter chose to send it, and
// neither it nor the reason is ever logged.
#include <spdlog/spdlog.h>

#include "core_internal.h"
#include "parley/conv/replica.h"

namespace parley::node {

namespace {

constexpr std::size_t kMaxReason = 1000;
constexpr std::size_t kMaxReportedText = 64 * 1024;

constexpr const char* kReportColumns =
    "SELECT id, reporter, reporter_device, conv_id, cseq, msg_id, sender, sent_ms, reason, text, "
    "created_ms, resolved_ms, note FROM reports";

ReportInfo report_from(const store::Statement& st) {
  ReportInfo r;
  r.id = st.column_int64(0);
  r.reporter = st.column_text(1);
  r.reporter_device = st.column_int64(2);
  r.conv = st.column_text(3);
  r.cseq = st.column_int64(4);
  r.msg_id = st.column_text(5);
  r.sender = st.column_text(6);
  r.sent_ms = st.column_int64(7);
  r.reason = st.column_text(8);
  if (!st.column_is_null(9)) r.text = st.column_text(9);
  r.created_ms = st.column_int64(10);
  r.resolved_ms = st.column_int64(11);
  r.note = st.column_text(12);
  return r;
}

}  // namespace

Status Core::do_report(Conn& c, wire::View req, wire::MapWriter& out) {
  PARLEY_ASSIGN_OR_RETURN(conv, req.str("conv", 128));
  PARLEY_ASSIGN_OR_RETURN(reason, req.str_or("reason", "", kMaxReason));
  std::optional<std::string> text;
  if (req.has("text")) {
    PARLEY_ASSIGN_OR_RETURN(t, req.str("text", kMaxReportedText));
    text = std::move(t);
  }
  const std::int64_t now = clock_.now_ms();
  if (const auto wait = reports_.blocked_for(c.address, now); wait > 0) {
    retry_after_ms_ = wait;
    return make_error("rate_limited", "too many reports this hour (" +
                                          std::to_string(config_.reports_per_hour) +
                                          "); retry after " + std::to_string(wait) + " ms");
  }

  // The reported message, in a conversation the reporter can see.
  std::int64_t cseq = 0, sent_ms = 0;
  std::string msg_id, sender;
  if (conv.rfind("g:", 0) == 0) {
    PARLEY_ASSIGN_OR_RETURN(id, req.str("msg_id", 128));
    PARLEY_TRY(group_for(c, conv, true).status());
    PARLEY_ASSIGN_OR_RETURN(
        st, db_.prepare("SELECT bytes FROM conv_events WHERE conv_id = ? AND event_id = ?"));
    st.bind(1, conv).bind(2, id);
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) return make_error("not_found", "no event " + id + " in " + conv);
    PARLEY_ASSIGN_OR_RETURN(event, conv::Event::decode(st.column_text(0)));
    if (event.kind != conv::Kind::kMessage && event.kind != conv::Kind::kEdit &&
        event.kind != conv::Kind::kReaction) {
      return make_error("bad_request", "only messages, edits and reactions can be reported");
    }
    msg_id = id;
    sender = event.author;
    sent_ms = event.wall_ms;
  } else {
    {
      PARLEY_ASSIGN_OR_RETURN(
          st, db_.prepare("SELECT 1 FROM conv_members WHERE user_id = ? AND conv_id = ?"));
      st.bind(1, c.user_id).bind(2, conv);
      PARLEY_ASSIGN_OR_RETURN(row, st.step());
      if (!row) return make_error("not_found", "no conversation " + conv);
    }
    const char* by_cseq =
        "SELECT cseq, msg_id, sender, sent_ms FROM messages WHERE conv_id = ? AND cseq = ?";
    const char* by_msg_id =
        "SELECT cseq, msg_id, sender, sent_ms FROM messages WHERE conv_id = ? AND msg_id = ? "
        "ORDER BY sender = ? LIMIT 1";
    const bool has_cseq = req.has("cseq");
    if (!has_cseq && !req.has("msg_id")) {
      return make_error("bad_request", "a report names the message by 'cseq' or 'msg_id'");
    }
    PARLEY_ASSIGN_OR_RETURN(st, db_.prepare(has_cseq ? by_cseq : by_msg_id));
    st.bind(1, conv);
    if (has_cseq) {
      PARLEY_ASSIGN_OR_RETURN(n, req.uint("cseq"));
      st.bind(2, static_cast<std::int64_t>(n));
    } else {
      PARLEY_ASSIGN_OR_RETURN(id, req.str("msg_id", 64));
      st.bind(2, id).bind(3, c.address);
    }
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) return make_error("not_found", "no such message in " + conv);
    cseq = st.column_int64(0);
    msg_id = st.column_text(1);
    sender = st.column_text(2);
    sent_ms = st.column_int64(3);
  }
  if (sender == c.address) return make_error("bad_request", "you cannot report your own message");

  PARLEY_ASSIGN_OR_RETURN(
      ins, db_.prepare("INSERT INTO reports(reporter, reporter_device, conv_id, cseq, msg_id, "
                       "sender, sent_ms, reason, text, created_ms) VALUES(?, ?, ?, ?, ?, ?, ?, ?, "
                       "?, ?)"));
  ins.bind(1, c.address)
      .bind(2, c.device_id)
      .bind(3, conv)
      .bind(4, cseq)
      .bind(5, msg_id)
      .bind(6, sender)
      .bind(7, sent_ms)
      .bind(8, reason);
  text ? ins.bind(9, std::string_view(*text)) : ins.bind_null(9);
  PARLEY_TRY(ins.bind(10, now).run());
  const std::int64_t id = db_.last_insert_rowid();
  reports_.record_failure(c.address, now);  // counts every report filed in the window
  spdlog::info("event=report_filed report={} reporter={} sender={} conv={} with_text={}", id,
               c.address, sender, conv, text.has_value());
  out.add("report", id);
  return ok_status();
}

Result<std::vector<ReportInfo>> Core::list_reports(bool open_only) {
  PARLEY_ASSIGN_OR_RETURN(
      st, db_.prepare(std::string(kReportColumns) +
                      (open_only ? " WHERE resolved_ms = 0 ORDER BY id" : " ORDER BY id")));
  std::vector<ReportInfo> out;
  for (;;) {
    PARLEY_ASSIGN_OR_RETURN(row, st.step());
    if (!row) break;
    out.push_back(report_from(st));
  }
  return out;
}

Result<std::optional<ReportInfo>> Core::report(std::int64_t id) {
  PARLEY_ASSIGN_OR_RETURN(st, db_.prepare(std::string(kReportColumns) + " WHERE id = ?"));
  st.bind(1, id);
  PARLEY_ASSIGN_OR_RETURN(row, st.step());
  if (!row) return std::optional<ReportInfo>();
  return std::optional<ReportInfo>(report_from(st));
}

Result<ReportInfo> Core::resolve_report(std::int64_t id, const std::string& note) {
  if (note.size() > kMaxReason) return make_error("bad_request", "the note is over 1000 bytes");
  PARLEY_ASSIGN_OR_RETURN(found, report(id));
  if (!found) return make_error("not_found", "no report " + std::to_string(id));
  if (found->resolved_ms != 0) {
    return make_error("conflict", "report " + std::to_string(id) + " is already resolved");
  }
  PARLEY_ASSIGN_OR_RETURN(st,
                          db_.prepare("UPDATE reports SET resolved_ms = ?, note = ? WHERE id = ?"));
  const std::int64_t now = clock_.now_ms();
  PARLEY_TRY(st.bind(1, now).bind(2, note).bind(3, id).run());
  found->resolved_ms = now;
  found->note = note;
  spdlog::info("event=report_resolved report={}", id);
  return std::move(*found);
}

}  // namespace parley::node
