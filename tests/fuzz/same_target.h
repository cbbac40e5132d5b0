// sameTarget(): whether two parsed targets say the same thing, for the fuzz targets that
// check a target's text reads back as itself. Target has no operator== of its own.
#pragma once

#include "common/target.h"

namespace connectable::fuzz {

inline bool sameTarget(const Target& a, const Target& b) {
  return a.kind == b.kind && a.host == b.host && a.port == b.port && a.text == b.text &&
         (a.kind != Target::Kind::Literal || a.address.toString() == b.address.toString());
}

}  // namespace connectable::fuzz
