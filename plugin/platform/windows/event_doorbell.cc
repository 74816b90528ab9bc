// Doorbells on Windows: one manual-reset event per direction. The waiting
// side waits on it together with the pipe (events cannot report that the
// peer died); Drain resets it. Ringing an event that is already set is free.
#include "plugin/platform/windows/windows_internal.h"

namespace grpc_shm {
namespace platform {
namespace {

class EventReceiver final : public WakeReceiver {
 public:
  explicit EventReceiver(UniqueHandle event) : event_(std::move(event)) {}
  NativeHandle poll_handle() const override { return event_.get(); }
  Status Wait(std::atomic<uint32_t>*, uint32_t, NativeHandle liveness, int timeout_ms) override {
    HANDLE handles[2] = {AsHandle(event_.get()), nullptr};
    DWORD count = 1;
    if (liveness != kInvalidHandle) handles[count++] = WaitableFor(liveness);
    const DWORD r = ::WaitForMultipleObjects(count, handles, FALSE,
                                             timeout_ms < 0 ? INFINITE : DWORD(timeout_ms));
    if (r == WAIT_OBJECT_0) return Status::Ok();
    if (r == WAIT_OBJECT_0 + 1) return CheckAlive(liveness);
    if (r == WAIT_TIMEOUT) return Status(StatusCode::kTimeout, "timed out waiting for the peer");
    return WindowsErrorStatus("WaitForMultipleObjects");
  }
  void Drain() override { ::ResetEvent(AsHandle(event_.get())); }

 private:
  UniqueHandle event_;
};

class EventSender final : public WakeSender {
 public:
  explicit EventSender(UniqueHandle event) : event_(std::move(event)) {}
  void Ring(std::atomic<uint32_t>*) override { ::SetEvent(AsHandle(event_.get())); }

 private:
  UniqueHandle event_;
};

}  // namespace

bool IsSupported(DoorbellKind kind) { return kind == DoorbellKind::kEvent; }

Status CreateDoorbell(DoorbellKind kind, DoorbellHandles* out) {
  if (!IsSupported(kind)) {
    return Status(StatusCode::kInvalidArgument, "doorbell kind not supported here");
  }
  HANDLE event = ::CreateEventW(nullptr, TRUE, FALSE, nullptr);
  if (event == nullptr) return WindowsErrorStatus("CreateEvent");
  out->wait.reset(FromHandle(event));
  return DuplicateHandle(out->wait.get(), &out->ring);
}

std::unique_ptr<WakeReceiver> MakeWakeReceiver(DoorbellKind, UniqueHandle wait) {
  return std::make_unique<EventReceiver>(std::move(wait));
}

std::unique_ptr<WakeSender> MakeWakeSender(DoorbellKind, UniqueHandle ring) {
  return std::make_unique<EventSender>(std::move(ring));
}

// Socket doorbells (the connection's own socket carries the rings) are a
// POSIX design: IsSupported(kSocket) is false here and the handshake refuses
// them before these are reached.
std::unique_ptr<WakeReceiver> MakeSocketWakeReceiver(NativeHandle) { return nullptr; }
std::unique_ptr<WakeSender> MakeSocketWakeSender(NativeHandle) { return nullptr; }

bool PeerHungUp(NativeHandle socket) {
  return CheckAlive(socket).code() == StatusCode::kPeerClosed;
}

}  // namespace platform
}  // namespace grpc_shm
