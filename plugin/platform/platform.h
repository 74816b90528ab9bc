// The operating-system pieces the IPC core needs, behind one small interface:
// shared memory that can be handed to another process, doorbells that wake a
// sleeping process, and the local socket that carries the handshake, the
// handles and the peer's liveness.
//
// Backends: linux/ (memfd, eventfd, futex), posix/ (shm_open, socketpair
// doorbells, Unix sockets; what macOS and the BSDs use; also built and
// tested on Linux), windows/ (an unnamed pagefile-backed section, event
// doorbells, a named pipe for the handshake and liveness, handles passed
// with DuplicateHandle into the peer process).
#ifndef GRPC_SHM_PLATFORM_PLATFORM_H_
#define GRPC_SHM_PLATFORM_PLATFORM_H_

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "plugin/platform/status.h"

namespace grpc_shm {
namespace platform {

#ifdef _WIN32
// A HANDLE's value, or a tagged pointer to a pipe end or listener of the
// Windows backend (see windows/windows_internal.h): those carry state a bare
// HANDLE cannot, such as the read that reports a dead peer. -1 is
// INVALID_HANDLE_VALUE; the backend never returns NULL as a valid handle.
using NativeHandle = intptr_t;
// Windows has no uid/gid: PeerCredentials carries the user's SID instead.
using uid_t = uint32_t;
using gid_t = uint32_t;
#else
using NativeHandle = int;
#endif
constexpr NativeHandle kInvalidHandle = -1;

// Owns one handle; closes it on destruction.
class UniqueHandle {
 public:
  UniqueHandle() = default;
  explicit UniqueHandle(NativeHandle h) : h_(h) {}
  UniqueHandle(UniqueHandle&& o) noexcept : h_(o.release()) {}
  UniqueHandle& operator=(UniqueHandle&& o) noexcept {
    reset(o.release());
    return *this;
  }
  UniqueHandle(const UniqueHandle&) = delete;
  UniqueHandle& operator=(const UniqueHandle&) = delete;
  ~UniqueHandle() { reset(); }

  NativeHandle get() const { return h_; }
  bool valid() const { return h_ != kInvalidHandle; }
  NativeHandle release() {
    NativeHandle h = h_;
    h_ = kInvalidHandle;
    return h;
  }
  void reset(NativeHandle h = kInvalidHandle);

 private:
  NativeHandle h_ = kInvalidHandle;
};

// ---------------------------------------------------------------- memory

enum class SharedMemoryKind : uint32_t {
  kMemfd = 1,     // Linux: anonymous, sealed against resizing
  kPosixShm = 2,  // shm_open + immediate shm_unlink: nothing left in /dev/shm
#ifdef _WIN32
  // Windows: an unnamed pagefile-backed section; nobody can open it by name,
  // and it cannot be shrunk under a mapping.
  kSection = 3,
#endif
};

// A mapping of shared memory; unmapped on destruction.
class MappedRegion {
 public:
  MappedRegion() = default;
  MappedRegion(void* addr, size_t size) : addr_(addr), size_(size) {}
  MappedRegion(MappedRegion&& o) noexcept;
  MappedRegion& operator=(MappedRegion&& o) noexcept;
  ~MappedRegion();
  uint8_t* data() const { return static_cast<uint8_t*>(addr_); }
  size_t size() const { return size_; }

 private:
  void* addr_ = nullptr;
  size_t size_ = 0;
};

bool IsSupported(SharedMemoryKind kind);
// Creates zero-filled shared memory of `size` bytes that can be sent to a
// peer, and maps it.
Status CreateSharedMemory(SharedMemoryKind kind, size_t size, UniqueHandle* handle,
                          MappedRegion* mapping);
// Maps memory received from a peer after checking that it really is `size`
// bytes (and, for memfd, sealed so the peer cannot shrink it under us, which
// would turn our next access into SIGBUS).
Status MapSharedMemory(SharedMemoryKind kind, NativeHandle handle, size_t size,
                       MappedRegion* mapping);
// Gives the whole pages within [offset, offset + size) of `mapping` back to
// the system: they cost no memory in any process that maps them until
// written again, and read as zeros meanwhile. `*released` gets the bytes
// given back. Where the platform cannot (or the range holds no whole page),
// nothing changes and 0 bytes are reported; not an error.
Status ReleaseSharedPages(const MappedRegion& mapping, size_t offset, size_t size,
                          size_t* released);

// ---------------------------------------------------------------- doorbells

enum class DoorbellKind : uint32_t {
  // Linux: pollable and cheap, but both sides share one open file, so the
  // peer can clear O_NONBLOCK on it and make our reads or writes block.
  // Only for peers you trust; listeners refuse it unless told otherwise.
  kEventFd = 1,
  // Linux: the wait word itself; cheapest wake, cannot be polled. Safe
  // against hostile peers (a futex call never blocks on the peer's say-so
  // beyond our own bounded wait).
  kFutex = 2,
  // Any POSIX system: the connection's own local socket, in both
  // directions (a byte wakes the peer, end of file is its hang-up), so one
  // descriptor per side carries wake-ups and liveness. Pollable; each side
  // owns its own open file and every call is non-blocking by itself. The
  // default.
  kSocket = 3,
#ifdef _WIN32
  // Windows: a manual-reset event (pollable with WaitForMultipleObjects).
  // Both sides hold the same event, so the peer can set or reset it: that
  // costs at most a spurious wake-up or a lost ring of its own (callers
  // re-check their condition; a lost ring only delays the peer's own
  // traffic). A dead peer is seen on the pipe, not on the event.
  kEvent = 4,
#endif
};

bool IsSupported(DoorbellKind kind);

// The handles of one doorbell. For eventfd both are the same object; a
// futex and a socket doorbell (the connection's socket) need none.
struct DoorbellHandles {
  UniqueHandle wait;
  UniqueHandle ring;
};
Status CreateDoorbell(DoorbellKind kind, DoorbellHandles* out);

// The sleeping side of a doorbell.
class WakeReceiver {
 public:
  virtual ~WakeReceiver() = default;
  // A handle that becomes readable when rung, for poll/epoll; kInvalidHandle
  // for futexes.
  virtual NativeHandle poll_handle() const = 0;
  // Sleeps until rung, `liveness` hangs up, or `timeout_ms` (-1: forever)
  // passes. `word`/`expected` are the wait word and the value it had when
  // the caller decided to sleep (used by futexes). Spurious returns are
  // allowed: callers re-check their condition. Returns kPeerClosed on
  // hang-up, kTimeout on timeout.
  virtual Status Wait(std::atomic<uint32_t>* word, uint32_t expected, NativeHandle liveness,
                      int timeout_ms) = 0;
  // Clears pending rings after poll_handle() was reported readable.
  virtual void Drain() = 0;
  // Doorbells that are the liveness socket too (kSocket): true once Wait()
  // or Drain() has read the peer's hang-up. Others: false.
  virtual bool PeerHungUp() const { return false; }
};

// The waking side of a doorbell.
class WakeSender {
 public:
  virtual ~WakeSender() = default;
  virtual void Ring(std::atomic<uint32_t>* word) = 0;
  // Tells a peer that waits on this doorbell that we are gone, where the
  // doorbell can carry that (sockets).
  virtual void Close() {}
};

std::unique_ptr<WakeReceiver> MakeWakeReceiver(DoorbellKind kind, UniqueHandle wait);
std::unique_ptr<WakeSender> MakeWakeSender(DoorbellKind kind, UniqueHandle ring);
// kSocket doorbells on the connection's local socket, which the receiver
// and sender borrow: it must outlive them.
std::unique_ptr<WakeReceiver> MakeSocketWakeReceiver(NativeHandle socket);
std::unique_ptr<WakeSender> MakeSocketWakeSender(NativeHandle socket);
// Non-blocking: true once the peer of local socket `socket` has hung up,
// even while bytes it sent before (doorbell rings) are still unread.
bool PeerHungUp(NativeHandle socket);

// ---------------------------------------------------------------- sockets

// Identity of the process at the other end of a local socket, as vouched for
// by the kernel.
struct PeerCredentials {
  pid_t pid = -1;  // -1 where the platform cannot tell
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
#ifdef _WIN32
  // The peer process's user as a SID string ("S-1-5-21-..."), from its token.
  std::string user_sid;
#endif
};

// `address` is an absolute filesystem path, or "@name" for a Linux abstract
// socket; on Windows "pipe:NAME" for the named pipe \\.\pipe\NAME. A stale
// socket file (nobody listening) is replaced; a live one is
// an error.
Status ListenLocal(const std::string& address, int backlog, UniqueHandle* listener);
Status ConnectLocal(const std::string& address, int timeout_ms, UniqueHandle* socket);
// kWouldBlock when no connection is pending (listener is non-blocking).
Status AcceptLocal(NativeHandle listener, UniqueHandle* socket);
// Removes the filesystem entry of a listening address (no-op for abstract).
void UnlinkLocal(const std::string& address);

// Which file a listener bound, so that at shutdown it removes its own socket
// file and nothing else: the path may meanwhile name another server's socket
// (ours was replaced as stale) or anything else someone put there.
struct LocalSocketFile {
  uint64_t device = 0;
  uint64_t inode = 0;
  bool valid = false;  // false for abstract addresses: nothing to remove
};
// ListenLocal that also reports the socket file it bound. Only a socket file
// nobody listens on is replaced; a regular file (or anything not a socket)
// and a live server's socket are left alone and fail with an "address in
// use (EADDRINUSE)" message.
Status ListenLocal(const std::string& address, int backlog, UniqueHandle* listener,
                   LocalSocketFile* bound);
// Removes `address` only if it still is the socket file `bound`.
void UnlinkLocal(const std::string& address, const LocalSocketFile& bound);
#ifdef _WIN32
// ListenLocal whose named pipe admits, besides the server's own user, the
// users or groups in `allowed_sids` (SID strings such as "S-1-5-32-545"):
// the pipe's DACL grants each of them access, so Windows refuses anyone
// else when they open it. A malformed SID fails with kInvalidArgument
// naming it, and no pipe is created.
Status ListenLocal(const std::string& address, int backlog,
                   const std::vector<std::string>& allowed_sids, UniqueHandle* listener,
                   LocalSocketFile* bound);
#endif

// A descriptor held in reserve (on /dev/null) for AcceptLocalOrShed.
Status OpenReserveHandle(UniqueHandle* reserve);
// AcceptLocal for a level-triggered poller. When accept fails because the
// process (EMFILE) or system (ENFILE) is out of descriptors, the pending
// connection keeps the listener readable and the poller would call back at
// once, forever. Instead the reserve is closed for a moment to accept that
// connection and hang up on it (its client sees hang-up and may retry), then
// reopened: `*shed` is true and the accept error is returned. A reserve lost
// to another thread (which took the slot in between) is reopened on a later
// call; while there is none, the error is returned unshed.
Status AcceptLocalOrShed(NativeHandle listener, UniqueHandle* reserve, UniqueHandle* socket,
                         bool* shed);

Status GetPeerCredentials(NativeHandle socket, PeerCredentials* creds);

// Sends one message of `size` bytes with `handles` attached, all or nothing
// within `timeout_ms`.
Status SendMessage(NativeHandle socket, const void* data, size_t size,
                   const std::vector<NativeHandle>& handles, int timeout_ms);
// Receives exactly `size` bytes and up to `max_handles` handles within
// `timeout_ms`. More handles than allowed, or a short message, is an error
// (and the surplus handles are closed, never leaked).
Status ReceiveMessage(NativeHandle socket, void* data, size_t size, size_t max_handles,
                      std::vector<UniqueHandle>* handles, int timeout_ms);
// ReceiveMessage in pieces, for a poller that must never wait on one peer:
// each Receive() takes what has arrived on the (non-blocking) socket and
// returns kWouldBlock until all `size` bytes are in. The bytes are consumed
// as they arrive, so a level-triggered poller is not woken again by a peer
// that sent half a message. Errors as ReceiveMessage.
class MessageReceiver {
 public:
  MessageReceiver(void* data, size_t size, size_t max_handles)
      : data_(static_cast<uint8_t*>(data)), size_(size), max_handles_(max_handles) {}
  Status Receive(NativeHandle socket);
  // The handles that came with the message, once Receive() returned Ok.
  std::vector<UniqueHandle>& handles() { return handles_; }

 private:
  uint8_t* const data_;
  const size_t size_;
  const size_t max_handles_;
  size_t received_ = 0;
  std::vector<UniqueHandle> handles_;
};

// Waits until `socket` is hung up or `timeout_ms` passes: kPeerClosed or kTimeout.
Status WaitForHangup(NativeHandle socket, int timeout_ms);
// Non-blocking check: kPeerClosed if the peer has hung up.
Status CheckAlive(NativeHandle socket);
// Waits until `handle` is readable (e.g. a listener with a pending
// connection): Ok, or kTimeout.
Status WaitReadable(NativeHandle handle, int timeout_ms);
// True if `handle` is a socket (doorbell descriptors from a peer are checked).
bool IsSocket(NativeHandle handle);
// Hangs up our end: the peer sees kPeerClosed, our handle stays open.
void ShutdownLocal(NativeHandle socket);

// ---------------------------------------------------------------- timers

// A one-shot timer whose handle becomes readable when it expires, for
// pollers (Linux: timerfd). Non-blocking and close-on-exec.
Status CreateTimer(UniqueHandle* timer);
// (Re)arms `timer` to expire once, `after` from now (at least 1 ns).
Status ArmTimer(NativeHandle timer, std::chrono::nanoseconds after);

// ---------------------------------------------------------------- event sets

// A second handle to the same open object (socket, file, ...), closed on exec.
Status DuplicateHandle(NativeHandle handle, UniqueHandle* out);

// A handle that is readable exactly while `handle` has data to read or its
// peer has hung up, and that reports nothing else, closed on exec: for an
// outside poller that always asks for writability too. gRPC's epoll1 poller
// registers every descriptor edge-triggered for EPOLLIN and EPOLLOUT, so
// over a socket that carries doorbells both ways each byte the peer drains
// is a writability edge that wakes a gRPC thread for nothing (3 of the
// server's 5.6 context switches per unary call). Linux: a private epoll
// instance watching `handle` for input and hang-up (an epoll handle is never
// writable); elsewhere a DuplicateHandle.
Status WatchReadable(NativeHandle handle, UniqueHandle* out);

// Many handles waited on by one thread at once, plus a way for any thread to
// interrupt that wait: what the transport's poller thread sleeps in. epoll on
// Linux; kqueue or an I/O completion port would take its place elsewhere.
class EventSet {
 public:
  enum Interest : uint32_t {
    kReadable = 1u << 0,  // data (or end of file) to read
    kHangup = 1u << 1,    // the peer hung up (also reported without asking)
  };
  struct Event {
    void* tag;        // as given to Add; nullptr for a Wake()
    uint32_t events;  // the Interest bits that hold
  };
  virtual ~EventSet() = default;
  // Watches `handle` (level-triggered) for `interest` until Remove; each
  // event carries `tag`, which must not be null. A handle number can be in
  // the set once: to watch one object twice, add a DuplicateHandle of it.
  // Any thread.
  virtual Status Add(NativeHandle handle, uint32_t interest, void* tag) = 0;
  // Stops watching `handle`; call it before closing the handle. Any thread.
  virtual void Remove(NativeHandle handle) = 0;
  // Waits until something is ready or `timeout_ms` passes (-1: forever) and
  // stores up to `max_events` events in `events`, their number in `*count`
  // (0 on timeout). A wait interrupted by a signal starts over. An error
  // means the set itself is unusable. One thread at a time.
  virtual Status Wait(int timeout_ms, Event* events, int max_events, int* count) = 0;
  // Makes the current or the next Wait report an event with a null tag;
  // Wakes before that Wait may be reported as one. Any thread.
  virtual void Wake() = 0;
};

Status CreateEventSet(std::unique_ptr<EventSet>* out);

// ---- large buffers
// Private memory of `bytes` for one large message, committed page by page as
// it is written (huge pages requested where the OS offers them); nullptr if
// it cannot be mapped. Free with UnmapLargeBuffer and the same size.
void* MapLargeBuffer(size_t bytes);
void UnmapLargeBuffer(void* p, size_t bytes);

}  // namespace platform
}  // namespace grpc_shm

#endif  // GRPC_SHM_PLATFORM_PLATFORM_H_
