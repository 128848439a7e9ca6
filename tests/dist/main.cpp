// The doctest runner of tests/dist's unit tests (sd_notify.hpp, privileges.hpp).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
