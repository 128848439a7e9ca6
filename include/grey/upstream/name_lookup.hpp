// grey/upstream/name_lookup.hpp — the client's names are looked up in dns/name_lookup.hpp;
// the relay still names them here.
#pragma once

#include "../dns/name_lookup.hpp"

namespace grey::upstream {
using dns::client_names;
using dns::look_up_names;
} // namespace grey::upstream
