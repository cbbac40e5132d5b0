// What a mistyped name was likely meant as: the edit distance between two words, and the
// one name of a list nearest to what was typed, for "did you mean" hints on labels and options.
// Pure functions over plain values; no thread-safety concerns.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace connectable {

// Edits (insert, delete or replace a character, or swap two neighbours) that turn a into b.
size_t editDistance(std::string_view a, std::string_view b);

// The name of `names` a mistyped one meant: the nearest within `mostEdits` edits, unless
// another is as near; none for a name of the list itself (it is not mistyped).
std::optional<std::string> nearestName(std::string_view typed, const std::vector<std::string>& names,
                                       size_t mostEdits = 2);

// " (did you mean '--state-dir'?)" for an unknown option near one of `names`, else "".
std::string didYouMean(std::string_view typed, const std::vector<std::string>& names);

}  // namespace connectable
