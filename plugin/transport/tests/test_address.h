// Socket addresses for the transport tests. On Linux an abstract name
// ("shm:@name": nothing left behind, nothing to clean up); where there are
// none (macOS, the BSDs, and Linux in GRPC_SHM_PORTABLE_POSIX builds, whose
// core refuses abstract names as macOS does) a socket file in /tmp, which the
// server removes when it shuts down.
#ifndef GRPC_SHM_TRANSPORT_TESTS_TEST_ADDRESS_H_
#define GRPC_SHM_TRANSPORT_TESTS_TEST_ADDRESS_H_

#include <string>

namespace grpc_shm {
namespace testing {

// The IPC core's address for `name` (unique per test): "@name" or a path.
inline std::string TestIpcAddress(const std::string& name) {
#if defined(__linux__) && !defined(GRPC_SHM_PORTABLE_POSIX)
  return "@" + name;
#else
  return "/tmp/" + name + ".sock";
#endif
}

// The gRPC target for an IPC address: "shm:@name" or "shm:///path".
inline std::string ShmTargetFor(const std::string& ipc_address) {
  return ipc_address[0] == '@' ? "shm:" + ipc_address : "shm://" + ipc_address;
}

inline std::string TestShmTarget(const std::string& name) {
  return ShmTargetFor(TestIpcAddress(name));
}

// The IPC address inside a "shm:" target: what ShmTargetFor took.
inline std::string IpcAddressOf(const std::string& target) {
  std::string rest = target.substr(4);  // after "shm:"
  return rest.compare(0, 2, "//") == 0 ? rest.substr(2) : rest;
}

}  // namespace testing
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_TESTS_TEST_ADDRESS_H_
