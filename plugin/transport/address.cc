#include "plugin/transport/address.h"

#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "src/core/lib/iomgr/resolved_address.h"

namespace grpc_shm {
namespace transport {
namespace {

// sun_path holds the path and its terminating NUL.
constexpr size_t kMaxPathBytes = sizeof(sockaddr_un::sun_path) - 1;

}  // namespace

absl::StatusOr<std::string> ParseShmAddress(absl::string_view target) {
  auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid shm address '", target, "': ", why,
                     " (expected shm:///absolute/path or shm:@name)"));
  };
  if (!absl::StartsWith(target, "shm:")) return invalid("scheme is not shm:");
  absl::string_view rest = target.substr(4);
  std::string address;
  if (absl::StartsWith(rest, "@")) {
    if (rest.size() < 2) return invalid("empty abstract name");
    address = std::string(rest);
  } else if (absl::StartsWith(rest, "//")) {
    // URI form: shm://<empty authority>/abs/path
    rest.remove_prefix(2);
    if (!absl::StartsWith(rest, "/")) {
      return invalid("path must be absolute (use three slashes)");
    }
    address = std::string(rest);
  } else if (absl::StartsWith(rest, "/")) {
    address = std::string(rest);
  } else {
    return invalid("path must be absolute");
  }
  if (address.size() < 2) return invalid("empty path");
  if (address.find('\0') != std::string::npos) return invalid("NUL in path");
  if (address.size() > kMaxPathBytes) {
    return invalid(absl::StrCat("longer than ", kMaxPathBytes, " bytes"));
  }
  return address;
}

std::string ResolverUriFor(const std::string& ipc_address) {
  if (!ipc_address.empty() && ipc_address[0] == '@') {
    return absl::StrCat("unix-abstract:", ipc_address.substr(1));
  }
  return absl::StrCat("unix:", ipc_address);
}

absl::StatusOr<std::string> IpcAddressFromResolved(const grpc_resolved_address& address) {
  const auto* un = reinterpret_cast<const sockaddr_un*>(address.addr);
  if (address.len < offsetof(sockaddr_un, sun_path) + 1 || un->sun_family != AF_UNIX) {
    return absl::InvalidArgumentError("shm channel resolved to a non-unix-socket address");
  }
  size_t path_len = address.len - offsetof(sockaddr_un, sun_path);
  if (path_len > sizeof(un->sun_path)) path_len = sizeof(un->sun_path);
  if (un->sun_path[0] == '\0') {
    // Abstract: the name is every byte after the leading NUL.
    return absl::StrCat("@", absl::string_view(un->sun_path + 1, path_len - 1));
  }
  return std::string(un->sun_path, strnlen(un->sun_path, path_len));
}

}  // namespace transport
}  // namespace grpc_shm
