// grey/version.hpp — Grey's version. The one place it is written: CMakeLists.txt reads it for
// project(), so the CMake package, the Debian packages and a program's grey_build_info all say
// the same, and a program built without CMake still finds it here.
#pragma once

#include <string_view>

namespace grey {
/// @addtogroup group_server
/// @{

/// Grey's version, MAJOR.MINOR.PATCH.
inline constexpr std::string_view version = "0.1.0";

/// @}
} // namespace grey
