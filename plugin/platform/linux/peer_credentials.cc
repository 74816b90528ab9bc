// Peer credentials on Linux: SO_PEERCRED, what the kernel recorded when the
// peer connected (or created the socketpair), so a peer cannot forge it.
// Also built in GRPC_SHM_PORTABLE_POSIX builds, exempt from their poison:
// Linux has no getpeereid (posix/peer_credentials_bsd.cc).
#include <sys/socket.h>

#include "plugin/platform/platform.h"

namespace grpc_shm {
namespace platform {

Status GetPeerCredentials(NativeHandle socket, PeerCredentials* creds) {
  struct ucred uc;
  socklen_t len = sizeof(uc);
  if (::getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0) {
    return ErrnoStatus("SO_PEERCRED");
  }
  creds->pid = uc.pid;
  creds->uid = uc.uid;
  creds->gid = uc.gid;
  return Status::Ok();
}

}  // namespace platform
}  // namespace grpc_shm
