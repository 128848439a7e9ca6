// grey/detail/watchdog.hpp — the former name of grey::deadline (deadline.hpp), kept while the
// upstream relay still spells it so.
#pragma once

#include "../deadline.hpp"

namespace grey::detail {
using watchdog = grey::deadline;
} // namespace grey::detail
