// Umbrella header of grpc-shm: everything a user needs.
#ifndef GRPC_SHM_GRPC_SHM_H_
#define GRPC_SHM_GRPC_SHM_H_

#include "grpc_shm/credentials.h"  // IWYU pragma: export
#include "grpc_shm/options.h"      // IWYU pragma: export

#endif  // GRPC_SHM_GRPC_SHM_H_
