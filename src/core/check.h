// EMBER_CHECK: programmer errors (broken invariants). Never used for bad input.
#pragma once
#include <cstdio>
#include <cstdlib>

#define EMBER_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);      \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)
