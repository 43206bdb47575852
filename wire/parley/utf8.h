// UTF-8 as the protocol means it (spec/client-protocol.md §2): well-formed per RFC 3629, so no
// overlong forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF. Pure functions.
#pragma once

#include <string>
#include <string_view>

namespace parley::wire {

bool valid_utf8(std::string_view s);

// `s` with every byte that is not part of a well-formed sequence replaced by U+FFFD, for showing
// text stored before the node checked it (it is never needed for what the parser accepted).
std::string repair_utf8(std::string_view s);

}  // namespace parley::wire
