// What watches the shared-memory connections and listeners of a process:
// the Poller interface, and ThreadPoller, the implementation that runs one
// thread of our own around a platform::EventSet (so a thousand idle
// connections cost a thousand registrations, not a thousand threads, and no
// CPU). The other implementation, GrpcEnginePoller (grpc_poller.h), lends
// the handles to gRPC's own polling threads. ConnectionPoller() picks one.
//
// Sources register their handles and get OnEvent() calls. On a ThreadPoller
// each batch of events runs inside an ApplicationCallbackExecCtx and an
// ExecCtx, so closures they schedule run on the poller thread once the batch
// is done (never while a source holds its own lock).
//
// Removal is asynchronous: a source is never called after OnRemoved(), and an
// event never refers to a freed source.
#ifndef GRPC_SHM_TRANSPORT_POLLER_H_
#define GRPC_SHM_TRANSPORT_POLLER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "plugin/ipc/status.h"
#include "plugin/platform/platform.h"

namespace grpc_shm {
namespace transport {

class PollSource {
 public:
  // Why OnEvent was called.
  enum Event : uint32_t {
    kReadable = 1u << 0,  // a handle registered with kReadable is readable
    kHangup = 1u << 1,    // a handle registered with kHangup was hung up
    kKick = 1u << 2,      // someone called Poller::Kick(this)
  };
  virtual ~PollSource() = default;
  // `role` is the value given to Poller::Add for the handle that fired (or
  // -1 for a kick). Never twice at once for one source on a ThreadPoller;
  // see grpc_poller.h for gRPC's threads.
  virtual void OnEvent(int role, uint32_t events) = 0;
  // The last call this source receives. The source may delete itself here.
  virtual void OnRemoved() = 0;
};

class Poller {
 public:
  struct Handle {
    int fd;
    int role;
    uint32_t interest;  // PollSource::kReadable and/or kHangup
  };

  virtual ~Poller() = default;

  // Watches `handles` for `source`, then kicks it once so it can look at
  // state that arrived before registration. Each registration watches its
  // own duplicate of each handle: the caller keeps its handles, may close
  // them after Remove, and may hand one to another source while this one is
  // still registered (a handshake's socket becomes its connection's liveness
  // socket). An error (out of descriptors, say) registers nothing: the source
  // then gets no call at all, not even OnRemoved, and must not be Removed.
  // Any thread (GrpcEnginePoller: under an ExecCtx).
  virtual ipc::Status Add(PollSource* source, const std::vector<Handle>& handles) = 0;
  // Unregisters `source`; its OnRemoved() follows once no OnEvent for it is
  // running or pending. Any thread, even under the source's own lock; at
  // most once per successful Add.
  virtual void Remove(PollSource* source) = 0;
  // Calls source->OnEvent(-1, kKick) soon. Any thread, even under the
  // source's own lock; only between Add and Remove.
  virtual void Kick(PollSource* source) = 0;
  // Kick for a source that stopped early to let others have the thread:
  // the kick comes after the sources already waiting for this poller's
  // threads. Same rules as Kick.
  virtual void KickAfterOthers(PollSource* source) = 0;

  // The process-wide ThreadPoller; its thread starts on first use and is
  // never joined (it outlives every source, which must all be removed
  // first). Listeners and handshakes always use it.
  static Poller& Get();
};

// The poller for an established connection: gRPC's polling threads when they
// can carry our handles (GrpcEnginePoller::Usable(), i.e. the epoll1 engine
// and no GRPC_SHM_POLLER=thread), else the process-wide ThreadPoller.
Poller& ConnectionPoller();

// One thread waiting in a platform::EventSet for every registered handle.
class ThreadPoller final : public Poller {
 public:
  // What the thread does after its EventSet failed to wait, before it tries
  // again: sleeps for the given time (tests watch it instead).
  using Backoff = std::function<void(std::chrono::milliseconds)>;

  // Starts the thread, which waits in `set` and is never joined: a
  // ThreadPoller must never be destroyed.
  ThreadPoller(std::unique_ptr<platform::EventSet> set, Backoff backoff);
  ~ThreadPoller() override;

  ipc::Status Add(PollSource* source, const std::vector<Handle>& handles) override;
  void Remove(PollSource* source) override;
  void Kick(PollSource* source) override;
  // A kick is queued behind the events the thread already collected.
  void KickAfterOthers(PollSource* source) override { Kick(source); }

 private:
  // One watched duplicate handle: the tag its events carry.
  struct Slot {
    PollSource* source;
    int role;
    platform::UniqueHandle handle;
    // Poller thread only. Set when its kAdd command runs; events before that
    // are skipped (the set is level-triggered, so they come back), which
    // lets a failed Add take its slots out again without its source ever
    // being called.
    bool committed = false;
  };
  enum CommandKind {
    kAdd,      // slots were added to the set: commit them, kick the source
    kRemove,   // take the source's slots out, then OnRemoved()
    kKick,     // OnEvent(-1, kKick) if still registered
    kDiscard,  // free the slots of a failed Add (already out of the set)
  };
  struct Command {
    CommandKind kind;
    PollSource* source;
    std::vector<std::unique_ptr<Slot>> slots;  // kAdd, kDiscard
  };

  void Run();
  void Post(Command command);
  void RunCommands();
  void Unwatch(std::vector<std::unique_ptr<Slot>>* slots);

  const std::unique_ptr<platform::EventSet> set_;
  const Backoff backoff_;
  std::mutex mu_;
  std::vector<Command> commands_;  // guarded by mu_
  bool wake_pending_ = false;      // guarded by mu_: saves redundant wakes
  // Poller thread only: what each registered source watches.
  std::map<PollSource*, std::vector<std::unique_ptr<Slot>>> registry_;
};

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_POLLER_H_
