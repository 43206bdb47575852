// The msgpack message codec (spec/client-protocol.md, "Encoding").
//
// A message is one msgpack map with string keys. Message::parse accepts exactly one map, with
// bounded sizes and nesting, and no trailing bytes; View gives typed, checked access to fields so
// a handler never touches a malformed value. MapWriter/ArrayWriter produce canonical bytes: keys
// in the order written, integers in their shortest form.
// Values are immutable after parsing; a View is valid while its Message lives.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "parley/result.h"

namespace parley::wire {

struct Limits {
  std::uint32_t max_array = 4096;
  std::uint32_t max_map = 64;
  std::uint32_t max_str = 64 * 1024;
  std::uint32_t max_bin = 256 * 1024;
  std::uint32_t max_depth = 6;
};

class View {
 public:
  View() = default;
  // `obj` is a msgpack::object owned by a Message; opaque here to keep msgpack out of headers.
  explicit View(const void* obj) : obj_(obj) {}

  bool is_map() const;
  bool has(std::string_view key) const;
  // The keys of a map, in encoded order; "bad_request" if not a map or a key is not a string.
  Result<std::vector<std::string>> keys() const;
  // Required fields: an error names the field when it is missing or of the wrong type.
  Result<std::string> str(std::string_view key, std::size_t max_len = 4096) const;
  Result<std::string> bin(std::string_view key, std::size_t max_len) const;
  Result<std::uint64_t> uint(std::string_view key) const;
  Result<std::int64_t> sint(std::string_view key) const;
  Result<bool> boolean(std::string_view key) const;
  Result<View> map(std::string_view key) const;
  Result<std::vector<View>> array(std::string_view key) const;
  // Optional fields: absent gives the fallback; present with the wrong type is an error.
  Result<std::string> str_or(std::string_view key, std::string fallback,
                             std::size_t max_len = 4096) const;
  Result<std::uint64_t> uint_or(std::string_view key, std::uint64_t fallback) const;
  Result<bool> boolean_or(std::string_view key, bool fallback) const;

  // Interpreting array elements that are themselves scalars.
  Result<std::string> as_str(std::size_t max_len = 4096) const;
  Result<std::uint64_t> as_uint() const;
  Result<std::string> as_bin(std::size_t max_len) const;

 private:
  const void* find(std::string_view key) const;
  const void* obj_ = nullptr;
};

class Message {
 public:
  Message(Message&&) noexcept;
  Message& operator=(Message&&) noexcept;
  ~Message();

  // Parses one msgpack map; rejects other types, trailing bytes and anything over `limits`.
  static Result<Message> parse(std::string_view bytes, const Limits& limits = Limits());

  const View& root() const { return root_; }
  // The frame type: the string field "t" (empty when absent or not a string).
  const std::string& type() const { return type_; }

 private:
  Message();
  struct Holder;
  std::unique_ptr<Holder> handle_;
  View root_;
  std::string type_;
};

class ArrayWriter;

class MapWriter {
 public:
  MapWriter& add(std::string_view key, std::string_view value);
  MapWriter& add(std::string_view key, const char* value) {
    return add(key, std::string_view(value));
  }
  MapWriter& add(std::string_view key, const std::string& value) {
    return add(key, std::string_view(value));
  }
  MapWriter& add_bin(std::string_view key, std::string_view bytes);
  MapWriter& add(std::string_view key, std::uint64_t value);
  MapWriter& add(std::string_view key, std::int64_t value);
  MapWriter& add(std::string_view key, int value) { return add(key, std::int64_t{value}); }
  MapWriter& add(std::string_view key, unsigned value) { return add(key, std::uint64_t{value}); }
  MapWriter& add(std::string_view key, bool value);
  MapWriter& add(std::string_view key, const MapWriter& value);
  MapWriter& add(std::string_view key, const ArrayWriter& value);
  MapWriter& add_nil(std::string_view key);
  // Appends every entry of `encoded_map` (the bytes of a msgpack map, e.g. another writer's
  // finish()). Returns false, adding nothing, when the bytes do not start with a map header.
  bool merge_map(std::string_view encoded_map);

  // The canonical bytes of the map.
  std::string finish() const;
  std::uint32_t size() const { return count_; }
  // At least the length of finish() (the entries plus the largest map header).
  std::size_t bytes() const { return body_.size() + 5; }

 private:
  void key(std::string_view key);
  std::string body_;
  std::uint32_t count_ = 0;
};

class ArrayWriter {
 public:
  ArrayWriter& push(std::string_view value);
  ArrayWriter& push(std::uint64_t value);
  ArrayWriter& push_bin(std::string_view bytes);
  ArrayWriter& push(const MapWriter& value);
  std::string finish() const;
  std::uint32_t size() const { return count_; }
  std::size_t bytes() const { return body_.size() + 5; }  // as MapWriter::bytes

 private:
  std::string body_;
  std::uint32_t count_ = 0;
};

}  // namespace parley::wire
