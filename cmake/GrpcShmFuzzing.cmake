# Flags for the libFuzzer build (GRPC_SHM_BUILD_FUZZERS, see fuzz/). Included
# before plugin/ so that the libraries the fuzzers link are built with
# coverage instrumentation and sanitizers too: coverage guidance only sees
# instrumented code, and a bug found in the IPC core must be reported where
# it happens, not later.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR
    "GRPC_SHM_BUILD_FUZZERS needs clang's libFuzzer: configure with "
    "-DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 "
    "(Debian packages clang-14 and libclang-rt-14-dev; scripts/fuzz.sh does this)")
endif()

include(CheckCXXSourceCompiles)
set(CMAKE_REQUIRED_FLAGS "-fsanitize=fuzzer")
check_cxx_source_compiles([=[
#include <cstddef>
#include <cstdint>
extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }
]=] GRPC_SHM_HAVE_LIBFUZZER)
unset(CMAKE_REQUIRED_FLAGS)
if(NOT GRPC_SHM_HAVE_LIBFUZZER)
  message(FATAL_ERROR "clang cannot link -fsanitize=fuzzer: install libclang-rt-14-dev")
endif()

# fuzzer-no-link: coverage counters everywhere; only the fuzz targets link
# libFuzzer's main (-fsanitize=fuzzer in fuzz/CMakeLists.txt).
add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
                    -fno-omit-frame-pointer)
add_link_options(-fsanitize=address,undefined)
