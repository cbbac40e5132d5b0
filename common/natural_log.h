// naturalLog: ln(x) for finite x > 0, to about 1e-15 relative, without libm. Pure; any
// thread.
//
// The shim's one use of libm was ln(u) for its weighted shuffle; linking libm for it maps
// one more library into every shim (about 170 KiB of Pss in a lone shim, and a little more
// start-up work), so the shim computes it itself, splitting the double by its bits (frexp
// would bind to libm again).
#pragma once

#include <cstdint>
#include <cstring>

namespace connectable {

inline double naturalLog(double x) {
  int bias = 1022;
  if (x < 2.2250738585072014e-308) {  // subnormal: scale into the normal range first
    x *= 18014398509481984.0;         // 2^54
    bias += 54;
  }
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  int exponent = static_cast<int>((bits >> 52) & 0x7ff) - bias;  // x = m * 2^exponent,
  bits = (bits & ~(uint64_t{0x7ff} << 52)) | (uint64_t{1022} << 52);  // m in [0.5, 1)
  double m;
  std::memcpy(&m, &bits, sizeof m);
  if (m < 0.7071067811865476) {          // centre m on 1: [sqrt(1/2), sqrt(2))
    m *= 2;
    --exponent;
  }
  // ln(m) = 2 atanh(t) = 2 (t + t^3/3 + t^5/5 + ...), t = (m - 1) / (m + 1), |t| < 0.172
  const double t = (m - 1) / (m + 1), t2 = t * t;
  double sum = 0;
  for (int k = 21; k >= 1; k -= 2) sum = sum * t2 + 1.0 / k;
  return 2 * t * sum + exponent * 0.6931471805599453;
}

}  // namespace connectable
