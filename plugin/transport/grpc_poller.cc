#include "plugin/transport/grpc_poller.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

#include "plugin/platform/platform.h"
#include "plugin/transport/tsan_handoff.h"

#ifdef _WIN32

// gRPC on Windows has no grpc_fd (no ev_posix.h): its IOCP engine cannot
// watch our events and pipe, so connections there are always carried by
// ThreadPoller (ConnectionPoller() in poller.cc asks Usable() first), as
// wherever gRPC's engine is not epoll1.
namespace grpc_shm {
namespace transport {

bool GrpcEnginePoller::Usable() { return false; }

GrpcEnginePoller& GrpcEnginePoller::Get() {
  static auto* poller = new GrpcEnginePoller();
  return *poller;
}

ipc::Status GrpcEnginePoller::Add(PollSource*, const std::vector<Handle>&) {
  return ipc::Status(ipc::StatusCode::kInvalidArgument,
                     "gRPC's polling engine cannot watch handles on Windows");
}
void GrpcEnginePoller::Remove(PollSource*) {}
void GrpcEnginePoller::Kick(PollSource*) {}
void GrpcEnginePoller::KickAfterOthers(PollSource*) {}

}  // namespace transport
}  // namespace grpc_shm

#else  // !_WIN32

#include "src/core/lib/iomgr/closure.h"
#include "src/core/lib/iomgr/ev_posix.h"
#include "src/core/lib/iomgr/exec_ctx.h"
#include "src/core/lib/iomgr/executor.h"

namespace grpc_shm {
namespace transport {
namespace {

struct Registration;

// One watched handle. Its closure is armed at most once at a time.
struct Watch {
  Registration* reg;
  int role;
  uint32_t interest;
  grpc_fd* fd;
  grpc_closure on_ready;
};

// Everything for one source. `pending` counts what may still call into the
// source: one for the registration itself (dropped by Remove), one per armed
// watch, one per scheduled kick. At zero the fds are orphaned and
// OnRemoved() runs.
struct Registration {
  PollSource* source;
  std::vector<Watch*> watches;
  std::atomic<int> pending{1};
  std::atomic<bool> removed{false};
};

std::mutex g_mu;
std::map<PollSource*, Registration*>& Registry() {
  static auto* registry = new std::map<PollSource*, Registration*>();
  return *registry;
}

// Runs `closure` after the caller's locks are gone: queued on the current
// ExecCtx when there is one, else on gRPC's executor.
void RunSoon(grpc_closure* closure) {
  if (grpc_core::ExecCtx::Get() != nullptr) {
    grpc_core::ExecCtx::Run(DEBUG_LOCATION, closure, absl::OkStatus());
  } else {
    grpc_core::Executor::Run(closure, absl::OkStatus());
  }
}

void Finish(Registration* reg) {
  for (Watch* w : reg->watches) {
    grpc_fd_orphan(w->fd, nullptr, nullptr, "grpc_shm");
    delete w;
  }
  PollSource* source = reg->source;
  delete reg;
  source->OnRemoved();
}

void Unref(Registration* reg) {
  if (reg->pending.fetch_sub(1, std::memory_order_acq_rel) == 1) Finish(reg);
}

void EnsureCallbackExecCtxAndRun(PollSource* source, int role, uint32_t events) {
  if (grpc_core::ApplicationCallbackExecCtx::Available()) {
    source->OnEvent(role, events);
  } else {
    grpc_core::ApplicationCallbackExecCtx callback_exec_ctx;
    source->OnEvent(role, events);
  }
}

void OnReady(void* arg, grpc_error_handle error) {
  TakeOver(arg);
  Watch* w = static_cast<Watch*>(arg);
  Registration* reg = w->reg;
  if (!error.ok() || reg->removed.load(std::memory_order_acquire)) {
    Unref(reg);
    return;
  }
  if (w->interest & PollSource::kReadable) {
    EnsureCallbackExecCtxAndRun(reg->source, w->role, PollSource::kReadable);
  } else if (!platform::CheckAlive(grpc_fd_wrapped_fd(w->fd)).ok()) {
    // A liveness socket only ever becomes readable by hanging up (or by a
    // peer that breaks the protocol, which ends the connection the same way).
    EnsureCallbackExecCtxAndRun(reg->source, w->role, PollSource::kHangup);
    Unref(reg);  // nothing more to watch on this one
    return;
  }
  // Edge-triggered: the source has drained the doorbell, so the next ring is
  // a new edge. After a removal the fd is shut down and this returns at once.
  HandOff(w);
  grpc_fd_notify_on_read(w->fd, &w->on_ready);
}

struct KickArg {
  Registration* reg;
  grpc_closure closure;
};

void OnKick(void* arg, grpc_error_handle) {
  TakeOver(arg);
  auto* k = static_cast<KickArg*>(arg);
  Registration* reg = k->reg;
  delete k;
  if (!reg->removed.load(std::memory_order_acquire)) {
    EnsureCallbackExecCtxAndRun(reg->source, -1, PollSource::kKick);
  }
  Unref(reg);
}

void KickRegistration(Registration* reg, bool on_executor = false) {
  reg->pending.fetch_add(1, std::memory_order_relaxed);
  auto* k = new KickArg{reg, {}};
  GRPC_CLOSURE_INIT(&k->closure, OnKick, k, nullptr);
  HandOff(k);
  if (on_executor) {
    grpc_core::Executor::Run(&k->closure, absl::OkStatus());
  } else {
    RunSoon(&k->closure);
  }
}

struct RemoveArg {
  Registration* reg;
  grpc_closure closure;
};

void OnRemove(void* arg, grpc_error_handle) {
  TakeOver(arg);
  auto* r = static_cast<RemoveArg*>(arg);
  Registration* reg = r->reg;
  delete r;
  for (Watch* w : reg->watches) {
    grpc_fd_shutdown(w->fd, GRPC_ERROR_CREATE("grpc_shm connection closed"));
  }
  Unref(reg);  // the registration's own reference
}

}  // namespace

bool GrpcEnginePoller::Usable() {
  const char* env = std::getenv("GRPC_SHM_POLLER");
  if (env != nullptr && std::strcmp(env, "thread") == 0) return false;
  const char* strategy = grpc_get_poll_strategy_name();
  return strategy != nullptr && std::strcmp(strategy, "epoll1") == 0;
}

GrpcEnginePoller& GrpcEnginePoller::Get() {
  static auto* poller = new GrpcEnginePoller();
  return *poller;
}

ipc::Status GrpcEnginePoller::Add(PollSource* source, const std::vector<Handle>& handles) {
  // Every descriptor first, so that running out of them registers nothing
  // rather than leaving a connection half watched. gRPC owns and closes what
  // it watches, hence a descriptor of our own for each handle: for input a
  // watch that never reports writability (see WatchReadable: over a socket
  // doorbell each byte the peer drains would wake a gRPC thread), for a
  // hang-up a duplicate, which OnReady probes with CheckAlive.
  std::vector<platform::UniqueHandle> fds(handles.size());
  for (size_t i = 0; i < handles.size(); ++i) {
    ipc::Status status = (handles[i].interest & PollSource::kReadable)
                             ? platform::WatchReadable(handles[i].fd, &fds[i])
                             : platform::DuplicateHandle(handles[i].fd, &fds[i]);
    if (!status.ok()) return status;
  }
  auto* reg = new Registration;
  reg->source = source;
  for (size_t i = 0; i < handles.size(); ++i) {
    const Handle& h = handles[i];
    auto* w =
        new Watch{reg, h.role, h.interest, grpc_fd_create(fds[i].release(), "grpc_shm", false), {}};
    GRPC_CLOSURE_INIT(&w->on_ready, OnReady, w, nullptr);
    reg->watches.push_back(w);
  }
  {
    std::lock_guard<std::mutex> lock(g_mu);
    Registry()[source] = reg;
  }
  for (Watch* w : reg->watches) {
    reg->pending.fetch_add(1, std::memory_order_relaxed);
    HandOff(w);
    grpc_fd_notify_on_read(w->fd, &w->on_ready);
  }
  KickRegistration(reg);
  return ipc::Status::Ok();
}

void GrpcEnginePoller::Remove(PollSource* source) {
  Registration* reg;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = Registry().find(source);
    if (it == Registry().end()) return;
    reg = it->second;
    Registry().erase(it);
  }
  reg->removed.store(true, std::memory_order_release);
  // Shut the fds down outside the caller's lock: that runs pending closures.
  auto* r = new RemoveArg{reg, {}};
  GRPC_CLOSURE_INIT(&r->closure, OnRemove, r, nullptr);
  HandOff(r);
  RunSoon(&r->closure);
}

void GrpcEnginePoller::Kick(PollSource* source) {
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = Registry().find(source);
  if (it != Registry().end()) KickRegistration(it->second);
}

void GrpcEnginePoller::KickAfterOthers(PollSource* source) {
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = Registry().find(source);
  if (it != Registry().end()) KickRegistration(it->second, /*on_executor=*/true);
}

}  // namespace transport
}  // namespace grpc_shm

#endif  // _WIN32
