// Status: the one error type of connectable. A Status is OK or carries a message that
// says what failed and why, ready for a log line. Result<T> is a value or a Status.
// Plain values: copy and pass freely; no thread-safety concerns.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace connectable {

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  static Status ok() { return Status(); }
  static Status error(std::string message) { return Status(std::move(message)); }

  bool isOk() const { return !message_.has_value(); }
  explicit operator bool() const { return isOk(); }
  const std::string& message() const {
    static const std::string kOk = "ok";
    return message_ ? *message_ : kOk;
  }
  // Prefixes context: "opening /var/run/netns/x: No such file or directory".
  Status withContext(const std::string& context) const {
    return isOk() ? *this : Status(context + ": " + *message_);
  }

 private:
  explicit Status(std::string message) : message_(std::move(message)) {}
  std::optional<std::string> message_;
};

// "<what>: <strerror(err)>", the one way errno becomes a Status.
Status errnoStatus(const std::string& what, int err);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}           // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {    // NOLINT: implicit by design
    assert(!status_.isOk() && "a Result built from a Status must carry an error");
  }

  bool isOk() const { return value_.has_value(); }
  explicit operator bool() const { return isOk(); }
  const Status& status() const { return status_; }
  T& value() { return *value_; }
  const T& value() const { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace connectable
