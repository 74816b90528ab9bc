// Options of a grpc-shm channel or server. Every field has a default that
// suits most local callers; the same struct serves both sides and each side
// ignores the fields that do not concern it.
#ifndef GRPC_SHM_OPTIONS_H_
#define GRPC_SHM_OPTIONS_H_

#ifndef _WIN32
#include <sys/types.h>  // uid_t, gid_t
#endif

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace grpc_shm {

struct ShmOptions {
  // Bytes of shared memory per direction of one connection. Rounded up to a
  // power of two in [4 KiB, 64 MiB]; the server caps what a client may ask
  // for at its own ring_bytes. Messages larger than a ring still work: they
  // stream through it in chunks. Default: 1 MiB.
  uint32_t ring_bytes = 1u << 20;

  // How long a thread whose call awaits the peer polls the ring before it
  // sleeps (the client after sending a request, the server after sending a
  // call's status, a Read with nothing there yet), and how long the IPC
  // core's blocking waits spin. Adaptive: after a spin that found nothing the
  // connection skips the next 1, 3, 7, ... (at most 63) chances to spin.
  // Spinning trades CPU for latency; idle connections never spin. Default:
  // 50 us (the smallest budget that catches a same-machine answer through
  // gRPC's call path; see README, Performance). 0: sleep at once.
  std::chrono::nanoseconds spin_budget{std::chrono::microseconds(50)};

#ifdef _WIN32
  // Server only, Windows: who may connect besides the server's own user, as
  // SID strings ("S-1-5-21-...-1001", or a group's SID such as "S-1-5-32-545").
  // They become the named pipe's DACL, so Windows itself refuses everyone
  // else when they open the pipe (group membership included). Empty (the
  // default): only the user running the server. A malformed SID makes
  // AddListeningPort fail. Windows has no uid or gid.
  std::vector<std::string> allowed_sids;
#else
  // Server only: who may connect, checked against the kernel-reported
  // credentials of the connecting process (SO_PEERCRED). A client is admitted
  // if its uid is in allowed_uids or its gid is in allowed_gids. Both empty
  // (the default) admits anyone who can open the socket, so the socket's
  // file permissions are the only gate.
  std::vector<uid_t> allowed_uids;
  std::vector<gid_t> allowed_gids;
#endif

  // Longest the connection handshake (hello, segment and doorbell exchange)
  // may take before the attempt fails. Default: 5 s.
  std::chrono::milliseconds handshake_timeout{5000};

#ifdef _WIN32
  // Client only, Windows: which users the server may run as, as SID strings
  // in their S-1-... form (compared as text with the user of the process
  // that serves the pipe: GetNamedPipeServerProcessId and its token). A
  // server run by anyone else fails the connection before any call is sent,
  // and calls fail with UNAVAILABLE naming both. Empty (the default) accepts
  // any server.
  std::vector<std::string> allowed_server_sids;
#else
  // Client only: which uids the server may run as, checked against the
  // kernel-reported credentials of the process that listens on the address
  // (SO_PEERCRED: its uid when it called listen()). A server run by anyone
  // else, say one squatting on the socket path or abstract name, fails the
  // connection before any call is sent, and calls fail with UNAVAILABLE
  // naming both uids. Empty (the default) accepts any server.
  std::vector<uid_t> allowed_server_uids;
#endif

  // Server only: how many clients may be in the middle of their handshake
  // at once, per listening address. Further clients are hung up on at once
  // (their calls fail with UNAVAILABLE and gRPC retries with backoff) until
  // a handshake finishes or times out, so a flood of clients that connect
  // and say nothing costs a bounded number of descriptors. 0: no limit.
  // Default: 128.
  int max_pending_handshakes = 128;
};

}  // namespace grpc_shm

#endif  // GRPC_SHM_OPTIONS_H_
