#include "plugin/transport/poller.h"

#include <grpc/support/log.h>

#include <algorithm>
#include <thread>
#include <utility>

#include "plugin/transport/grpc_poller.h"
#include "src/core/lib/iomgr/exec_ctx.h"

namespace grpc_shm {
namespace transport {

Poller& Poller::Get() {
  // Leaked on purpose: the thread may still be waiting at exit.
  static Poller* poller = [] {
    std::unique_ptr<platform::EventSet> set;
    ipc::Status status = platform::CreateEventSet(&set);
    if (!status.ok()) {
      gpr_log(GPR_ERROR, "grpc_shm poller: %s", status.ToString().c_str());
      GPR_ASSERT(false);
    }
    return new ThreadPoller(std::move(set), [](std::chrono::milliseconds pause) {
      std::this_thread::sleep_for(pause);
    });
  }();
  return *poller;
}

Poller& ConnectionPoller() {
  if (GrpcEnginePoller::Usable()) return GrpcEnginePoller::Get();
  return Poller::Get();
}

ThreadPoller::ThreadPoller(std::unique_ptr<platform::EventSet> set, Backoff backoff)
    : set_(std::move(set)), backoff_(std::move(backoff)) {
  std::thread([this] { Run(); }).detach();
}

// The thread uses the poller until the process exits.
ThreadPoller::~ThreadPoller() { GPR_ASSERT(false); }

ipc::Status ThreadPoller::Add(PollSource* source, const std::vector<Handle>& handles) {
  // Duplicates, not the caller's handles: a handle number can be in the set
  // only once, and the caller may hand its handle to another source (which
  // registers it again) before this one's removal has run.
  std::vector<std::unique_ptr<Slot>> slots;
  for (const Handle& h : handles) {
    auto slot = std::make_unique<Slot>(Slot{source, h.role, {}});
    ipc::Status status = platform::DuplicateHandle(h.fd, &slot->handle);
    if (status.ok()) {
      uint32_t interest = 0;
      if (h.interest & PollSource::kReadable) interest |= platform::EventSet::kReadable;
      if (h.interest & PollSource::kHangup) interest |= platform::EventSet::kHangup;
      status = set_->Add(slot->handle.get(), interest, slot.get());
    }
    if (!status.ok()) {
      // The poller thread may hold events for the slots added so far, so
      // only it frees them, after its current batch.
      for (auto& added : slots) set_->Remove(added->handle.get());
      Post(Command{kDiscard, nullptr, std::move(slots)});
      return status;
    }
    slots.push_back(std::move(slot));
  }
  Post(Command{kAdd, source, std::move(slots)});
  return ipc::Status::Ok();
}

void ThreadPoller::Remove(PollSource* source) { Post(Command{kRemove, source, {}}); }
void ThreadPoller::Kick(PollSource* source) { Post(Command{kKick, source, {}}); }

void ThreadPoller::Post(Command command) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    commands_.push_back(std::move(command));
    wake = !wake_pending_;
    wake_pending_ = true;
  }
  if (wake) set_->Wake();
}

void ThreadPoller::Unwatch(std::vector<std::unique_ptr<Slot>>* slots) {
  for (auto& slot : *slots) set_->Remove(slot->handle.get());
  slots->clear();  // closes the duplicates
}

void ThreadPoller::RunCommands() {
  std::vector<Command> commands;
  {
    std::lock_guard<std::mutex> lock(mu_);
    commands.swap(commands_);
    wake_pending_ = false;
  }
  for (Command& c : commands) {
    switch (c.kind) {
      case kAdd: {
        auto& slots = registry_[c.source];
        for (auto& slot : c.slots) {
          slot->committed = true;
          slots.push_back(std::move(slot));
        }
        c.source->OnEvent(-1, PollSource::kKick);
        break;
      }
      case kKick:
        if (registry_.count(c.source) != 0) c.source->OnEvent(-1, PollSource::kKick);
        break;
      case kRemove: {
        auto it = registry_.find(c.source);
        if (it != registry_.end()) {
          Unwatch(&it->second);
          registry_.erase(it);
        }
        c.source->OnRemoved();
        break;
      }
      case kDiscard:
        c.slots.clear();  // closes the duplicates
        break;
    }
  }
}

void ThreadPoller::Run() {
  constexpr int kMaxEvents = 64;
  // A failing wait is retried after a pause that doubles up to a second:
  // the set can only fail for reasons that do not go away by themselves, so
  // spinning would only burn a core, and giving up would strand every
  // connection without a word.
  constexpr std::chrono::milliseconds kFirstPause(1);
  constexpr std::chrono::milliseconds kMaxPause(1000);
  std::chrono::milliseconds pause(0);
  platform::EventSet::Event events[kMaxEvents];
  for (;;) {
    int n = 0;
    ipc::Status status = set_->Wait(-1, events, kMaxEvents, &n);
    if (!status.ok()) {
      if (pause.count() == 0) {
        gpr_log(GPR_ERROR,
                "grpc_shm poller: %s; shared-memory connections stall until it recovers "
                "(retrying every second at most)",
                status.ToString().c_str());
        pause = kFirstPause;
      } else {
        pause = std::min(pause * 2, kMaxPause);
      }
      backoff_(pause);
      continue;
    }
    if (pause.count() != 0) {
      gpr_log(GPR_INFO, "grpc_shm poller: waiting works again");
      pause = std::chrono::milliseconds(0);
    }
    grpc_core::ApplicationCallbackExecCtx callback_exec_ctx;
    grpc_core::ExecCtx exec_ctx;
    bool commands = false;
    for (int i = 0; i < n; ++i) {
      auto* slot = static_cast<Slot*>(events[i].tag);
      if (slot == nullptr) {
        commands = true;
        continue;
      }
      if (!slot->committed) continue;
      uint32_t what = 0;
      if (events[i].events & platform::EventSet::kReadable) what |= PollSource::kReadable;
      if (events[i].events & platform::EventSet::kHangup) what |= PollSource::kHangup;
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
