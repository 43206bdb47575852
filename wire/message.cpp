#include "parley/message.h"

#include <msgpack.hpp>

#include "parley/utf8.h"

namespace parley::wire {
namespace {

struct StringSink {
  std::string* out;
  void write(const char* data, std::size_t n) { out->append(data, n); }
};

using Obj = msgpack::object;
const Obj* as_obj(const void* p) { return static_cast<const Obj*>(p); }

// Message::parse also refuses (malformed_frame) what spec/client-protocol.md §1-2 forbids in
// any value: a map key that is not a string and a string that is not UTF-8.
// What spec/client-protocol.md §1-2 asks of every value: map keys are strings and every string
// is UTF-8. Returns the first violation. Depth is bounded by the unpack limit.
const char* encoding_violation(const Obj& o) {
  switch (o.type) {
    case msgpack::type::STR:
      return valid_utf8(std::string_view(o.via.str.ptr, o.via.str.size))
                 ? nullptr
                 : "a string is not valid UTF-8";
    case msgpack::type::ARRAY:
      for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
        if (const char* v = encoding_violation(o.via.array.ptr[i])) return v;
      }
      return nullptr;
    case msgpack::type::MAP:
      for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& kv = o.via.map.ptr[i];
        if (kv.key.type != msgpack::type::STR) return "a map key is not a string";
        if (const char* v = encoding_violation(kv.key)) return v;
        if (const char* v = encoding_violation(kv.val)) return v;
      }
      return nullptr;
    default:
      return nullptr;
  }
}

Error field_error(std::string_view key, const char* what) {
  return make_error("bad_request", "field '" + std::string(key) + "' " + what);
}

}  // namespace

bool View::is_map() const { return obj_ && as_obj(obj_)->type == msgpack::type::MAP; }

const void* View::find(std::string_view key) const {
  if (!is_map()) return nullptr;
  const auto& m = as_obj(obj_)->via.map;
  for (std::uint32_t i = 0; i < m.size; ++i) {
    const auto& k = m.ptr[i].key;
    if (k.type == msgpack::type::STR && std::string_view(k.via.str.ptr, k.via.str.size) == key) {
      return &m.ptr[i].val;
    }
  }
  return nullptr;
}

bool View::has(std::string_view key) const { return find(key) != nullptr; }

Result<std::vector<std::string>> View::keys() const {
  if (!is_map()) return make_error("bad_request", "not a map");
  const auto& m = as_obj(obj_)->via.map;
  std::vector<std::string> out;
  for (std::uint32_t i = 0; i < m.size; ++i) {
    const auto& k = m.ptr[i].key;
    if (k.type != msgpack::type::STR) return make_error("bad_request", "a map key is not a string");
    out.emplace_back(k.via.str.ptr, k.via.str.size);
  }
  return out;
}

Result<std::string> View::str(std::string_view key, std::size_t max_len) const {
  const auto* v = as_obj(find(key));
  if (!v) return field_error(key, "is missing");
  if (v->type != msgpack::type::STR) return field_error(key, "must be a string");
  if (v->via.str.size > max_len) return field_error(key, "is too long");
  return std::string(v->via.str.ptr, v->via.str.size);
}

Result<std::string> View::bin(std::string_view key, std::size_t max_len) const {
  const auto* v = as_obj(find(key));
  if (!v) return field_error(key, "is missing");
  if (v->type != msgpack::type::BIN) return field_error(key, "must be binary");
  if (v->via.bin.size > max_len) {
    return make_error("payload_too_large", "field '" + std::string(key) + "' is too large");
  }
  return std::string(v->via.bin.ptr, v->via.bin.size);
}

Result<std::uint64_t> View::uint(std::string_view key) const {
  const auto* v = as_obj(find(key));
  if (!v) return field_error(key, "is missing");
  if (v->type != msgpack::type::POSITIVE_INTEGER) {
    return field_error(key, "must be a non-negative integer");
  }
  return v->via.u64;
}

Result<std::int64_t> View::sint(std::string_view key) const {
  const auto* v = as_obj(find(key));
  if (!v) return field_error(key, "is missing");
  if (v->type == msgpack::type::NEGATIVE_INTEGER) return v->via.i64;
  if (v->type == msgpack::type::POSITIVE_INTEGER && v->via.u64 <= INT64_MAX) {
    return static_cast<std::int64_t>(v->via.u64);
  }
  return field_error(key, "must be an integer");
}

Result<bool> View::boolean(std::string_view key) const {
  const auto* v = as_obj(find(key));
  if (!v) return field_error(key, "is missing");
  if (v->type != msgpack::type::BOOLEAN) return field_error(key, "must be a boolean");
  return v->via.boolean;
}

Result<View> View::map(std::string_view key) const {
  const auto* v = as_obj(find(key));
  if (!v) return field_error(key, "is missing");
  if (v->type != msgpack::type::MAP) return field_error(key, "must be a map");
  return View(v);
}

Result<std::vector<View>> View::array(std::string_view key) const {
  const auto* v = as_obj(find(key));
  if (!v) return field_error(key, "is missing");
  if (v->type != msgpack::type::ARRAY) return field_error(key, "must be an array");
  std::vector<View> out;
  out.reserve(v->via.array.size);
  for (std::uint32_t i = 0; i < v->via.array.size; ++i) out.emplace_back(&v->via.array.ptr[i]);
  return out;
}

Result<std::string> View::str_or(std::string_view key, std::string fallback,
                                 std::size_t max_len) const {
  if (!has(key)) return fallback;
  return str(key, max_len);
}

Result<std::uint64_t> View::uint_or(std::string_view key, std::uint64_t fallback) const {
  if (!has(key)) return fallback;
  return uint(key);
}

Result<bool> View::boolean_or(std::string_view key, bool fallback) const {
  if (!has(key)) return fallback;
  return boolean(key);
}

Result<std::string> View::as_str(std::size_t max_len) const {
  const auto* o = as_obj(obj_);
  if (!o || o->type != msgpack::type::STR) return make_error("bad_request", "not a string");
  if (o->via.str.size > max_len) return make_error("bad_request", "string too long");
  return std::string(o->via.str.ptr, o->via.str.size);
}

Result<std::string> View::as_bin(std::size_t max_len) const {
  const auto* o = as_obj(obj_);
  if (!o || o->type != msgpack::type::BIN) return make_error("bad_request", "not binary");
  if (o->via.bin.size > max_len) return make_error("payload_too_large", "binary too large");
  return std::string(o->via.bin.ptr, o->via.bin.size);
}

Result<std::uint64_t> View::as_uint() const {
  const auto* o = as_obj(obj_);
  if (!o || o->type != msgpack::type::POSITIVE_INTEGER) {
    return make_error("bad_request", "not a non-negative integer");
  }
  return o->via.u64;
}

struct Message::Holder {
  msgpack::object_handle oh;
};

Message::Message() : handle_(std::make_unique<Holder>()) {}
Message::Message(Message&&) noexcept = default;
Message& Message::operator=(Message&&) noexcept = default;
Message::~Message() = default;

Result<Message> Message::parse(std::string_view bytes, const Limits& limits) {
  Message m;
  std::size_t offset = 0;
  try {
    const msgpack::unpack_limit limit(limits.max_array, limits.max_map, limits.max_str,
                                      limits.max_bin, /*ext=*/0, limits.max_depth);
    msgpack::unpack(m.handle_->oh, bytes.data(), bytes.size(), offset, nullptr, nullptr, limit);
  } catch (const msgpack::size_overflow&) {
    return make_error("malformed_frame", "frame exceeds a size or nesting limit");
  } catch (const msgpack::insufficient_bytes&) {
    return make_error("malformed_frame", "frame ends inside a msgpack value");
  } catch (const std::exception&) {
    return make_error("malformed_frame", "frame is not valid msgpack");
  }
  if (offset != bytes.size()) {
    return make_error("malformed_frame", "trailing bytes after the msgpack map");
  }
  if (m.handle_->oh.get().type != msgpack::type::MAP) {
    return make_error("malformed_frame", "frame is not a msgpack map");
  }
  if (const char* violation = encoding_violation(m.handle_->oh.get())) {
    return make_error("malformed_frame", violation);
  }
  m.root_ = View(&m.handle_->oh.get());
  if (auto t = m.root_.str("t", 64); t.ok()) m.type_ = std::move(t).value();
  return m;
}

void MapWriter::key(std::string_view key) {
  StringSink sink{&body_};
  msgpack::packer<StringSink> pk(sink);
  pk.pack_str(static_cast<std::uint32_t>(key.size()));
  pk.pack_str_body(key.data(), static_cast<std::uint32_t>(key.size()));
  ++count_;
}

MapWriter& MapWriter::add(std::string_view k, std::string_view value) {
  key(k);
  StringSink sink{&body_};
  msgpack::packer<StringSink> pk(sink);
  pk.pack_str(static_cast<std::uint32_t>(value.size()));
  pk.pack_str_body(value.data(), static_cast<std::uint32_t>(value.size()));
  return *this;
}

MapWriter& MapWriter::add_bin(std::string_view k, std::string_view bytes) {
  key(k);
  StringSink sink{&body_};
  msgpack::packer<StringSink> pk(sink);
  pk.pack_bin(static_cast<std::uint32_t>(bytes.size()));
  pk.pack_bin_body(bytes.data(), static_cast<std::uint32_t>(bytes.size()));
  return *this;
}

MapWriter& MapWriter::add(std::string_view k, std::uint64_t value) {
  key(k);
  StringSink sink{&body_};
  msgpack::packer<StringSink>(sink).pack_uint64(value);
  return *this;
}

MapWriter& MapWriter::add(std::string_view k, std::int64_t value) {
  key(k);
  StringSink sink{&body_};
  msgpack::packer<StringSink>(sink).pack_int64(value);
  return *this;
}

MapWriter& MapWriter::add(std::string_view k, bool value) {
  key(k);
  StringSink sink{&body_};
  msgpack::packer<StringSink> pk(sink);
  value ? pk.pack_true() : pk.pack_false();
  return *this;
}

MapWriter& MapWriter::add(std::string_view k, const MapWriter& value) {
  key(k);
  body_ += value.finish();
  return *this;
}

MapWriter& MapWriter::add(std::string_view k, const ArrayWriter& value) {
  key(k);
  body_ += value.finish();
  return *this;
}

MapWriter& MapWriter::add_nil(std::string_view k) {
  key(k);
  StringSink sink{&body_};
  msgpack::packer<StringSink>(sink).pack_nil();
  return *this;
}

bool MapWriter::merge_map(std::string_view m) {
  if (m.empty()) return false;
  const auto b = static_cast<unsigned char>(m[0]);
  std::uint32_t n = 0;
  std::size_t header = 1;
  if ((b & 0xf0) == 0x80) {
    n = b & 0x0f;
  } else if (b == 0xde && m.size() >= 3) {
    n = (std::uint32_t{static_cast<unsigned char>(m[1])} << 8) | static_cast<unsigned char>(m[2]);
    header = 3;
  } else if (b == 0xdf && m.size() >= 5) {
    for (int i = 1; i <= 4; ++i) n = (n << 8) | static_cast<unsigned char>(m[i]);
    header = 5;
  } else {
    return false;
  }
  body_.append(m.substr(header));
  count_ += n;
  return true;
}

std::string MapWriter::finish() const {
  std::string out;
  StringSink sink{&out};
  msgpack::packer<StringSink>(sink).pack_map(count_);
  out += body_;
  return out;
}

ArrayWriter& ArrayWriter::push(std::string_view value) {
  StringSink sink{&body_};
  msgpack::packer<StringSink> pk(sink);
  pk.pack_str(static_cast<std::uint32_t>(value.size()));
  pk.pack_str_body(value.data(), static_cast<std::uint32_t>(value.size()));
  ++count_;
  return *this;
}

ArrayWriter& ArrayWriter::push_bin(std::string_view bytes) {
  StringSink sink{&body_};
  msgpack::packer<StringSink> pk(sink);
  pk.pack_bin(static_cast<std::uint32_t>(bytes.size()));
  pk.pack_bin_body(bytes.data(), static_cast<std::uint32_t>(bytes.size()));
  ++count_;
  return *this;
}

ArrayWriter& ArrayWriter::push(std::uint64_t value) {
  StringSink sink{&body_};
  msgpack::packer<StringSink>(sink).pack_uint64(value);
  ++count_;
  return *this;
}

ArrayWriter& ArrayWriter::push(const MapWriter& value) {
  body_ += value.finish();
  ++count_;
  return *this;
}

std::string ArrayWriter::finish() const {
  std::string out;
  StringSink sink{&out};
  msgpack::packer<StringSink>(sink).pack_array(count_);
  out += body_;
  return out;
}

}  // namespace parley::wire
