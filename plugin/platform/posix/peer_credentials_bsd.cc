// Peer credentials on macOS and the BSDs: getpeereid (uid and gid the
// kernel recorded at connect), and on macOS the pid from LOCAL_PEERPID.
// Linux uses linux/peer_credentials.cc (it has no getpeereid), so nothing
// here is compiled there.
#ifndef __linux__
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "plugin/platform/platform.h"

#ifdef __APPLE__
#include <sys/un.h>  // SOL_LOCAL, LOCAL_PEERPID
#endif

namespace grpc_shm {
namespace platform {
namespace {

#ifdef __APPLE__
// macOS only: the pid of the process that connected, or -1.
pid_t PeerPidMacOS(NativeHandle socket) {
  pid_t pid = -1;
  socklen_t len = sizeof(pid);
  if (::getsockopt(socket, SOL_LOCAL, LOCAL_PEERPID, &pid, &len) != 0) return -1;
  return pid;
}
#endif  // __APPLE__

}  // namespace

Status GetPeerCredentials(NativeHandle socket, PeerCredentials* creds) {
  if (::getpeereid(socket, &creds->uid, &creds->gid) != 0) return ErrnoStatus("getpeereid");
  creds->pid = -1;  // the BSDs: not told (FreeBSD's LOCAL_PEERCRED could)
#ifdef __APPLE__
  creds->pid = PeerPidMacOS(socket);
#endif
  return Status::Ok();
}

}  // namespace platform
}  // namespace grpc_shm
#endif  // !__linux__
