#include "plugin/transport/poller.h"

#include <grpc/support/log.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <thread>

#include "src/core/lib/iomgr/exec_ctx.h"

namespace grpc_shm {
namespace transport {
namespace {

enum CommandKind { kAdd, kRemove, kKickCommand };

// One registered handle: what epoll_event.data.ptr points at.
struct SlotData {
  PollSource* source;
  int role;
  int fd;
};

// Poller-thread-only bookkeeping of what each source registered.
std::map<PollSource*, std::vector<SlotData*>>& Registry() {
  static auto* registry = new std::map<PollSource*, std::vector<SlotData*>>();
  return *registry;
}

}  // namespace

Poller& Poller::Get() {
  // Leaked on purpose: the thread may still be in epoll_wait at exit.
  static Poller* poller = new Poller();
  return *poller;
}

Poller::Poller() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  GPR_ASSERT(epoll_fd_ >= 0 && wake_fd_ >= 0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // nullptr marks the wake fd
  GPR_ASSERT(epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) == 0);
  std::thread([this] { Run(); }).detach();
}

void Poller::Add(PollSource* source, const std::vector<Handle>& handles) {
  Post(kAdd, source, handles);
}
void Poller::Remove(PollSource* source) { Post(kRemove, source, {}); }
void Poller::Kick(PollSource* source) { Post(kKickCommand, source, {}); }

void Poller::Post(int kind, PollSource* source, std::vector<Handle> handles) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    commands_.push_back(Command{kind, source, std::move(handles)});
    wake = !wake_pending_;
    wake_pending_ = true;
  }
  if (wake) {
    uint64_t one = 1;
    ssize_t r;
    do {
      r = write(wake_fd_, &one, sizeof(one));
    } while (r < 0 && errno == EINTR);
  }
}

void Poller::RunCommands() {
  std::vector<Command> commands;
  {
    std::lock_guard<std::mutex> lock(mu_);
    commands.swap(commands_);
    wake_pending_ = false;
  }
  auto& registry = Registry();
  for (Command& c : commands) {
    switch (c.kind) {
      case kAdd: {
        auto& slots = registry[c.source];
        for (const Handle& h : c.handles) {
          auto* slot = new SlotData{c.source, h.role, h.fd};
          epoll_event ev{};
          if (h.interest & PollSource::kReadable) ev.events |= EPOLLIN;
          if (h.interest & PollSource::kHangup) ev.events |= EPOLLRDHUP;
          ev.data.ptr = slot;
          if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, h.fd, &ev) != 0) {
            gpr_log(GPR_ERROR, "grpc_shm poller: epoll_ctl(ADD, %d): %s", h.fd, strerror(errno));
            delete slot;
            continue;
          }
          slots.push_back(slot);
        }
        c.source->OnEvent(-1, PollSource::kKick);
        break;
      }
      case kKickCommand:
        if (registry.count(c.source) != 0) {
          c.source->OnEvent(-1, PollSource::kKick);
        }
        break;
      case kRemove: {
        auto it = registry.find(c.source);
        if (it != registry.end()) {
          for (SlotData* slot : it->second) {
            epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, slot->fd, nullptr);
            delete slot;
          }
          registry.erase(it);
        }
        c.source->OnRemoved();
        break;
      }
    }
  }
}

void Poller::Run() {
  constexpr int kMaxEvents = 64;
  epoll_event events[kMaxEvents];
  for (;;) {
    int n = epoll_wait(epoll_fd_, events, kMaxEvents, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      gpr_log(GPR_ERROR, "grpc_shm poller: epoll_wait: %s", strerror(errno));
      continue;
    }
    grpc_core::ApplicationCallbackExecCtx callback_exec_ctx;
    grpc_core::ExecCtx exec_ctx;
    bool commands = false;
    for (int i = 0; i < n; ++i) {
      auto* slot = static_cast<SlotData*>(events[i].data.ptr);
      if (slot == nullptr) {
        uint64_t value;
        while (read(wake_fd_, &value, sizeof(value)) < 0 && errno == EINTR) {
        }
        commands = true;
        continue;
      }
      uint32_t what = 0;
      if (events[i].events & EPOLLIN) what |= PollSource::kReadable;
      if (events[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        what |= PollSource::kHangup;
      }
      slot->source->OnEvent(slot->role, what);
    }
    // Commands run after the batch: a removal never frees a slot that a
    // later event of the same batch still points at.
    if (commands) RunCommands();
    // Leaving the scope flushes the closures the sources scheduled.
  }
}

}  // namespace transport
}  // namespace grpc_shm
