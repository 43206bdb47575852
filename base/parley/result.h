// Result<T> and Status: how Parley's libraries report failure without exceptions.
//
// An Error carries a stable machine code (the same strings the protocols put on the wire, see
// spec/client-protocol.md "Errors") and a one-line human message. Results are [[nodiscard]];
// PARLEY_TRY propagates an error to the caller. Not thread-safe beyond value semantics.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace parley {

struct Error {
  std::string code;     // machine-readable, e.g. "bad_request", "not_found", "io"
  std::string message;  // one line for humans; never contains secrets
};

inline Error make_error(std::string code, std::string message) {
  return Error{std::move(code), std::move(message)};
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }
  Error&& take_error() {
    assert(!ok());
    return std::get<1>(std::move(v_));
  }

  // The value, or `fallback` on error.
  T value_or(T fallback) const& { return ok() ? std::get<0>(v_) : std::move(fallback); }
  T value_or(T fallback) && { return ok() ? std::get<0>(std::move(v_)) : std::move(fallback); }
  // Just the outcome.
  Result<void> status() const;

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return error_;
  }
  Error&& take_error() {
    assert(!ok_);
    return std::move(error_);
  }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

inline Status ok_status() { return Status(); }

template <class T>
Result<void> Result<T>::status() const {
  return ok() ? Result<void>() : Result<void>(error());
}

}  // namespace parley

// Evaluates `expr` (a Result or Status); on failure returns its error from the enclosing function.
#define PARLEY_TRY(expr)                                                  \
  do {                                                                    \
    auto parley_try_result_ = (expr);                                     \
    if (!parley_try_result_.ok()) return parley_try_result_.take_error(); \
  } while (0)

// Declares `var` from a Result<T> expression, returning the error on failure.
#define PARLEY_ASSIGN_OR_RETURN(var, expr)                    \
  auto var##_result_ = (expr);                                \
  if (!var##_result_.ok()) return var##_result_.take_error(); \
  auto var = std::move(var##_result_).value()
