#include "common/status.h"

#include <cstring>

namespace connectable {

Status errnoStatus(const std::string& what, int err) {
  return Status::error(what + ": " + std::strerror(err));
}

}  // namespace connectable
