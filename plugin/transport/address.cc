#include "plugin/transport/address.h"

#include <stddef.h>
#ifdef _WIN32
#include <winsock2.h>
// After winsock2.h, which it needs: sockaddr_un (gRPC 1.51 on Windows builds
// no unix-socket support, but the struct is the same).
#include <afunix.h>
#else
#include <sys/socket.h>
#include <sys/un.h>
#endif

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "src/core/lib/iomgr/resolved_address.h"

namespace grpc_shm {
namespace transport {
namespace {

// sun_path holds the path and its terminating NUL.
constexpr size_t kMaxPathBytes = sizeof(sockaddr_un::sun_path) - 1;
// \\.\pipe\ and the name stay below Windows' 256 characters; the same
// bound as the Windows backend's (plugin/platform/windows/named_pipe.cc).
constexpr size_t kMaxPipeNameBytes = 200;
constexpr absl::string_view kPipePrefix = "pipe:";

#ifdef _WIN32
constexpr char kFormsHere[] = "shm:pipe:NAME";
#else
constexpr char kFormsHere[] = "shm:///absolute/path or shm:@name";
#endif

}  // namespace

absl::StatusOr<ShmAddress> ParseAnyShmAddress(absl::string_view target) {
  auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid shm address '", target, "': ", why, " (expected ", kFormsHere, ")"));
  };
  if (!absl::StartsWith(target, "shm:")) return invalid("scheme is not shm:");
  absl::string_view rest = target.substr(4);
  if (absl::StartsWith(rest, kPipePrefix)) {
    absl::string_view name = rest.substr(kPipePrefix.size());
    if (name.empty()) return invalid("empty pipe name");
    if (name.size() > kMaxPipeNameBytes) {
      return invalid(absl::StrCat("pipe name longer than ", kMaxPipeNameBytes, " bytes"));
    }
    for (unsigned char c : name) {
      // Windows forbids a backslash in a pipe's name; control characters
      // (NUL included) would not survive as a file name.
      if (c < 0x20 || c == '\\') return invalid("control character or backslash in pipe name");
    }
    return ShmAddress{ShmAddressKind::kPipe, std::string(rest)};
  }
  ShmAddressKind kind = ShmAddressKind::kPath;
  std::string address;
  if (absl::StartsWith(rest, "@")) {
    kind = ShmAddressKind::kAbstract;
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
  return ShmAddress{kind, std::move(address)};
}

absl::StatusOr<std::string> ParseShmAddress(absl::string_view target) {
  absl::StatusOr<ShmAddress> parsed = ParseAnyShmAddress(target);
  if (!parsed.ok()) return parsed.status();
#ifdef _WIN32
  const bool here = parsed->kind == ShmAddressKind::kPipe;
  const char* why = "Unix socket addresses do not exist on Windows; use a named pipe";
#else
  const bool here = parsed->kind != ShmAddressKind::kPipe;
  const char* why = "named pipes exist on Windows only";
#endif
  if (!here) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid shm address '", target, "': ", why, " (expected ", kFormsHere, ")"));
  }
  return std::move(parsed->ipc_address);
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
