// DockerEventLines: cuts the body of Docker's GET /events into its lines (one JSON event
// each), keeping at most maxLineBytes of a line. Pure: bytes in, lines out, whatever the
// reads' sizes. Not thread-safe: the event stream's reader thread owns one.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace connectable {

struct DockerEventLine {
  enum class Kind {
    Text,      // a line to parse
    Blank,     // nothing but spaces, tabs and CRs: Docker sends none, a proxy might
    Overlong,  // more than maxLineBytes: its bytes were dropped as they came
  };
  Kind kind = Kind::Text;
  // Text and Blank: the line without its '\n'; a '\r' before it stays (JSON reads it as
  // whitespace). Valid until the next take().
  std::string_view text;
  size_t bytes = 0;  // of the stream, the '\n' included
};

class DockerEventLines {
 public:
  explicit DockerEventLines(size_t maxLineBytes) : max_(maxLineBytes) {}

  // Takes bytes from the front of *input up to the end of the first line among them, or
  // all of them: the line that ended, if one did.
  std::optional<DockerEventLine> take(std::string_view* input);
  // The bytes of a line not ended yet: what a stream that ends now cuts off.
  size_t pendingBytes() const { return ended_ ? 0 : length_; }

 private:
  size_t max_;
  std::string line_;  // the line so far, up to max_ bytes of it
  size_t length_ = 0;  // the line so far, beyond max_ too
  bool ended_ = false;  // line_ was handed on: the next take() starts a new one
};

}  // namespace connectable
