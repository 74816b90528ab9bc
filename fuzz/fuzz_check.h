// What every fuzzer here uses to report a broken invariant: print why and
// abort, which libFuzzer records as a crash with the input that caused it
// (assert() would vanish under NDEBUG).
#ifndef GRPC_SHM_FUZZ_FUZZ_CHECK_H_
#define GRPC_SHM_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond, ...)                                                           \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                                \
      std::fprintf(stderr, "\n");                                                       \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

#endif  // GRPC_SHM_FUZZ_FUZZ_CHECK_H_
