// grey/greylist/judges_first.hpp — whether this build judges clients first: with the resolver
// (grey::dns, libunbound) and the Public Suffix List (grey::psl, libpsl) linked, the fronts
// gather evidence for the reputation check (reputation_sources.hpp) and GREY_JUDGES_FIRST is 1;
// without them it is 0, the check finds no evidence, and every client is greylisted alike.
#pragma once

#if defined(GREY_WITH_DNS) && defined(GREY_WITH_PSL)
#define GREY_JUDGES_FIRST 1
#include "reputation_sources.hpp"
#else
#define GREY_JUDGES_FIRST 0
#endif
