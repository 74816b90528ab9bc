// The handshake messages exchanged on the local socket before the rings are
// used. Fixed-size little structs: the receiver reads exactly sizeof() bytes
// and validates every field.
//
//   client -> server  ClientHello
//   server -> client  ServerHello  (+ descriptors: segment; for eventfd
//                                    doorbells also the client doorbell's
//                                    wait end and the server doorbell's
//                                    ring end)
//   client -> server  ClientReady
//
// After ClientReady the socket carries no more messages: with socket
// doorbells each byte on it is a ring, end of file a hang-up.
#ifndef GRPC_SHM_IPC_HANDSHAKE_FORMAT_H_
#define GRPC_SHM_IPC_HANDSHAKE_FORMAT_H_

#include <cstdint>

namespace grpc_shm {
namespace ipc {

constexpr uint32_t kHelloMagic = 0x6c6c6548;  // "Hell"
constexpr uint32_t kReadyMagic = 0x79646552;  // "Redy"

struct ClientHello {
  uint32_t magic;
  uint32_t version;
  uint32_t memory_kind;    // platform::SharedMemoryKind
  uint32_t doorbell_kind;  // platform::DoorbellKind
  uint32_t c2s_bytes;      // requested; the server may lower it
  uint32_t s2c_bytes;
  uint32_t reserved[2];
};
static_assert(sizeof(ClientHello) == 32, "wire format");

struct ServerHello {
  uint32_t magic;
  uint32_t version;
  uint32_t status;  // StatusCode; non-zero: refused, `message` says why
  uint32_t memory_kind;
  uint32_t doorbell_kind;
  uint32_t c2s_bytes;
  uint32_t s2c_bytes;
  uint32_t num_handles;
  char message[96];  // NUL-terminated
};
static_assert(sizeof(ServerHello) == 128, "wire format");

struct ClientReady {
  uint32_t magic;
  uint32_t reserved;
};
static_assert(sizeof(ClientReady) == 8, "wire format");

}  // namespace ipc
}  // namespace grpc_shm

#endif  // GRPC_SHM_IPC_HANDSHAKE_FORMAT_H_
