// Shared pieces of the Windows backend.
//
// A NativeHandle on Windows is either a HANDLE's value or a tagged pointer to
// a PipeObject (a pipe end or a listener). Kernel handles are multiples of 4,
// so bit 0 tells them apart; -1 (INVALID_HANDLE_VALUE) is neither. Pipe ends
// are objects because a bare pipe HANDLE cannot be waited on for "data or
// hang-up": the object keeps one overlapped read in flight whose event is
// what waiters and event sets wait on.
#ifndef GRPC_SHM_PLATFORM_WINDOWS_WINDOWS_INTERNAL_H_
#define GRPC_SHM_PLATFORM_WINDOWS_WINDOWS_INTERNAL_H_

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
// winuser.h's SendMessage macro would rename platform::SendMessage.
#undef SendMessage

#include <chrono>
#include <string>

#include "plugin/platform/platform.h"

namespace grpc_shm {
namespace platform {

// "<what>: <FormatMessage text> (error N)", as kSystem.
Status WindowsErrorStatus(const std::string& what, DWORD err);
inline Status WindowsErrorStatus(const std::string& what) {
  return WindowsErrorStatus(what, ::GetLastError());
}

inline HANDLE AsHandle(NativeHandle h) { return reinterpret_cast<HANDLE>(h); }
// NULL and INVALID_HANDLE_VALUE (APIs disagree on which means failure) both
// become kInvalidHandle.
inline NativeHandle FromHandle(HANDLE h) {
  return h == nullptr || h == INVALID_HANDLE_VALUE ? kInvalidHandle
                                                   : reinterpret_cast<NativeHandle>(h);
}

class PipeObject {
 public:
  virtual ~PipeObject() = default;
  // An event that is signalled while the object has something to report
  // (a pending connection; data wanted by a receiver, or a hang-up).
  // Level-triggered: it stays signalled until the condition is consumed.
  virtual HANDLE ReadyEvent() = 0;
  // True for a connected pipe end (what IsSocket() means here).
  virtual bool is_pipe_end() const = 0;
};

inline bool IsPipeObject(NativeHandle h) { return h != kInvalidHandle && (h & 1) != 0; }
inline PipeObject* AsPipeObject(NativeHandle h) {
  return IsPipeObject(h) ? reinterpret_cast<PipeObject*>(h & ~intptr_t{1}) : nullptr;
}
inline NativeHandle TagPipeObject(PipeObject* o) { return reinterpret_cast<NativeHandle>(o) | 1; }

// What to pass to WaitForMultipleObjects for `h`: a pipe object's ready
// event, or the handle itself.
inline HANDLE WaitableFor(NativeHandle h) {
  PipeObject* o = AsPipeObject(h);
  return o != nullptr ? o->ReadyEvent() : AsHandle(h);
}

using Clock = std::chrono::steady_clock;
inline Clock::time_point DeadlineFromMs(int timeout_ms) {
  return timeout_ms < 0 ? Clock::time_point::max()
                        : Clock::now() + std::chrono::milliseconds(timeout_ms);
}
inline DWORD RemainingMs(Clock::time_point deadline) {
  if (deadline == Clock::time_point::max()) return INFINITE;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() <= 0 ? 0 : static_cast<DWORD>(left.count());
}

}  // namespace platform
}  // namespace grpc_shm

#endif  // GRPC_SHM_PLATFORM_WINDOWS_WINDOWS_INTERNAL_H_
