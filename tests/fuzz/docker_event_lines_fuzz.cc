// The body of Docker's GET /events, whatever its bytes and however its reads are cut, as the
// event stream's reader splits it into lines. The first byte sets the line limit (times 8),
// the second the size of the reads (1 to 64 bytes); the rest is the body. Every byte is
// accounted for (the lines' bytes and what is pending add up to the body), no line handed
// on is longer than the limit or holds a '\n', each is the body's own bytes, and the lines
// are the same when the body comes in one read.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "injector/docker_event_lines.h"
#include "tests/fuzz/fuzz_check.h"

using namespace connectable;
using connectable::fuzz::check;

namespace {

struct Seen {
  DockerEventLine::Kind kind;
  std::string text;
  size_t bytes;
  bool operator==(const Seen& o) const { return kind == o.kind && text == o.text && bytes == o.bytes; }
};

// The lines of `body` read `step` bytes at a time; *pending: what is left of a line not ended.
std::vector<Seen> split(std::string_view body, size_t maxLineBytes, size_t step, size_t* pending) {
  DockerEventLines lines(maxLineBytes);
  std::vector<Seen> seen;
  size_t offset = 0;  // where in the body the next line starts
  for (size_t at = 0; at < body.size(); at += step) {
    std::string_view input = body.substr(at, step);
    while (!input.empty()) {
      const size_t before = input.size();
      auto line = lines.take(&input);
      check(input.size() < before);  // every call moves on
      if (!line) continue;
      const std::string_view whole = body.substr(offset, line->bytes);
      check(line->bytes >= 1 && whole.size() == line->bytes && whole.back() == '\n');
      check(whole.substr(0, whole.size() - 1).find('\n') == std::string_view::npos);
      switch (line->kind) {
        case DockerEventLine::Kind::Text:
        case DockerEventLine::Kind::Blank:
          check(line->text.size() <= maxLineBytes);
          check(line->text == whole.substr(0, whole.size() - 1));
          check((line->kind == DockerEventLine::Kind::Blank) ==
                (line->text.find_first_not_of(" \t\r") == std::string_view::npos));
          break;
        case DockerEventLine::Kind::Overlong:
          check(line->text.empty() && line->bytes - 1 > maxLineBytes);
          break;
      }
      offset += line->bytes;
      seen.push_back({line->kind, std::string(line->text), line->bytes});
    }
  }
  *pending = lines.pendingBytes();
  check(offset + *pending == body.size());
  check(body.substr(offset).find('\n') == std::string_view::npos);
  return seen;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t maxLineBytes = size_t{data[0]} * 8;
  const size_t step = 1 + data[1] % 64;
  const std::string_view body(reinterpret_cast<const char*>(data) + 2, size - 2);
  size_t pending = 0, pendingWhole = 0;
  const auto seen = split(body, maxLineBytes, step, &pending);
  check(seen == split(body, maxLineBytes, body.size() + 1, &pendingWhole));
  check(pending == pendingWhole);
  return 0;
}
