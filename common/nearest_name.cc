#include "common/nearest_name.h"

#include <algorithm>

namespace connectable {

size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

std::optional<std::string> nearestName(std::string_view typed, const std::vector<std::string>& names,
                                       size_t mostEdits) {
  std::optional<std::string> nearest;
  size_t best = mostEdits + 1;
  bool tie = false;
  for (const auto& name : names) {
    // Lengths further apart than that need more edits; skips the work for a long word.
    if (typed.size() > name.size() + mostEdits || name.size() > typed.size() + mostEdits) continue;
    size_t edits = editDistance(typed, name);
    if (edits == 0) return std::nullopt;
    if (edits < best) {
      best = edits;
      nearest = name;
      tie = false;
    } else if (edits == best) {
      tie = true;
    }
  }
  return tie ? std::nullopt : nearest;
}

std::string didYouMean(std::string_view typed, const std::vector<std::string>& names) {
  auto meant = nearestName(typed, names);
  return meant ? " (did you mean '" + *meant + "'?)" : "";
}

}  // namespace connectable
