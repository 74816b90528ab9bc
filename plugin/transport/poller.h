// The one thread per process that waits on every shared-memory connection and
// listener: a single epoll set, so a thousand idle connections cost a
// thousand registrations, not a thousand threads, and no CPU.
//
// Sources register their handles and get OnEvent() calls on the poller
// thread, each batch of events inside an ApplicationCallbackExecCtx and an
// ExecCtx, so closures they schedule run on the poller thread once the batch
// is done (never while a source holds its own lock).
//
// Removal is itself run on the poller thread, between batches, so a source is
// never called after OnRemoved() and an event never refers to a freed source.
#ifndef GRPC_SHM_TRANSPORT_POLLER_H_
#define GRPC_SHM_TRANSPORT_POLLER_H_

#include <cstdint>
#include <mutex>
#include <vector>

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
  // Poller thread only. `role` is the value given to Poller::Add for the
  // handle that fired (or -1 for a kick).
  virtual void OnEvent(int role, uint32_t events) = 0;
  // Poller thread only; the last call this source receives. The source may
  // delete itself here.
  virtual void OnRemoved() = 0;
};

class Poller {
 public:
  struct Handle {
    int fd;
    int role;
    uint32_t interest;  // PollSource::kReadable and/or kHangup
  };

  // The process-wide poller; its thread starts on first use and is never
  // joined (it outlives every source, which must all be removed first).
  static Poller& Get();

  // Registers `handles` for `source`, then kicks it once so it can look at
  // state that arrived before registration. Any thread.
  void Add(PollSource* source, const std::vector<Handle>& handles);
  // Unregisters `source` and then calls its OnRemoved(), on the poller
  // thread. Any thread; at most once per Add.
  void Remove(PollSource* source);
  // Calls source->OnEvent(-1, kKick) soon on the poller thread. Any thread,
  // only between Add and Remove.
  void Kick(PollSource* source);

 private:
  Poller();
  void Run();
  void Post(int kind, PollSource* source, std::vector<Handle> handles);
  void RunCommands();

  struct Slot;
  struct Command {
    int kind;
    PollSource* source;
    std::vector<Handle> handles;
  };
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::mutex mu_;
  std::vector<Command> commands_;  // guarded by mu_
  bool wake_pending_ = false;      // guarded by mu_: saves redundant writes
};

}  // namespace transport
}  // namespace grpc_shm

#endif  // GRPC_SHM_TRANSPORT_POLLER_H_
