#include "injector/docker_event_lines.h"

namespace connectable {

std::optional<DockerEventLine> DockerEventLines::take(std::string_view* input) {
  if (ended_) {
    line_.clear();
    length_ = 0;
    ended_ = false;
  }
  const size_t newline = input->find('\n');
  const std::string_view part = input->substr(0, newline);
  // Past the limit, the line's bytes are counted, not kept: a daemon's endless line costs
  // no more memory than a long one.
  if (line_.size() < max_) line_.append(part.substr(0, max_ - line_.size()));
  length_ += part.size();
  if (newline == std::string_view::npos) {
    input->remove_prefix(input->size());
    return std::nullopt;
  }
  input->remove_prefix(newline + 1);
  ended_ = true;
  DockerEventLine line;
  line.bytes = length_ + 1;
  if (length_ > max_) {
    line.kind = DockerEventLine::Kind::Overlong;
    return line;
  }
  line.text = line_;
  if (line_.find_first_not_of(" \t\r") == std::string::npos) line.kind = DockerEventLine::Kind::Blank;
  return line;
}

}  // namespace connectable
