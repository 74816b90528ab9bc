// Forced first include (-include) of the project's other sources (transport,
// tests) in a GRPC_SHM_PORTABLE_POSIX build: the IPC core's headers, read
// once here the way the core itself reads them, that is without __linux__
// (see portable_posix_poison.h). Those sources keep __linux__ for
// everything else (gRPC, Abseil and GoogleTest are built for Linux), but a
// core header that chooses by __linux__ (plugin/ipc/connection.h: which
// shared memory a listener accepts by default) must choose the same way in
// every source, or the transport's listener refuses what the core's client
// asks for.
#ifndef GRPC_SHM_PLATFORM_POSIX_PORTABLE_POSIX_CORE_HEADERS_H_
#define GRPC_SHM_PLATFORM_POSIX_PORTABLE_POSIX_CORE_HEADERS_H_

// libstdc++'s configuration is read with the real platform first.
#include <cstddef>

#pragma push_macro("__linux__")
#undef __linux__
#include "plugin/ipc/connection.h"
#include "plugin/platform/platform.h"
#pragma pop_macro("__linux__")

#endif  // GRPC_SHM_PLATFORM_POSIX_PORTABLE_POSIX_CORE_HEADERS_H_
