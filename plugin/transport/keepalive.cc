#include "plugin/transport/keepalive.h"

#include <grpc/grpc.h>
#include <grpc/support/log.h>

#include <algorithm>
#include <atomic>

#include "absl/strings/str_cat.h"
#include "plugin/transport/errors.h"
#include "plugin/transport/transport_internal.h"
#include "plugin/transport/tsan_handoff.h"

namespace grpc_shm {
namespace transport {

using grpc_core::Duration;
using grpc_core::ExecCtx;
using grpc_core::Timestamp;

// chttp2's defaults and bounds (chttp2_transport.cc).
KeepaliveConfig KeepaliveConfig::FromChannelArgs(const grpc_core::ChannelArgs& args,
                                                 bool is_client) {
  KeepaliveConfig c;
  c.time = std::max(Duration::Milliseconds(1),
                    args.GetDurationFromIntMillis(GRPC_ARG_KEEPALIVE_TIME_MS)
                        .value_or(is_client ? Duration::Infinity() : Duration::Hours(2)));
  c.timeout = std::max(
      Duration::Milliseconds(1),
      args.GetDurationFromIntMillis(GRPC_ARG_KEEPALIVE_TIMEOUT_MS).value_or(Duration::Seconds(20)));
  c.permit_without_calls = args.GetBool(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS).value_or(false);
  return c;
}

namespace {

std::atomic<uint64_t> g_pings_answered{0};

void ArmKeepaliveTimerLocked(ShmTransport* t, Timestamp due);

// What the timer does when it fires: ping, or judge the last ping.
void OnKeepaliveDueLocked(ShmTransport* t) {
  const Timestamp now = Timestamp::Now();
  if (t->keepalive_pinging) {
    const Timestamp deadline = t->keepalive_sent + t->keepalive.timeout;
    const bool answered = t->connection->KeepalivePingAnswered(t->keepalive_seq);
    if (!answered && now < deadline) {
      // Looks again every keepalive time: a peer that answers in time gets
      // its next ping a keepalive time after the last, as over chttp2.
      ArmKeepaliveTimerLocked(t, std::min(deadline, now + t->keepalive.time));
      return;
    }
    if (!answered) {
      CloseLocked(t, StatusError(GRPC_STATUS_UNAVAILABLE,
                                 absl::StrCat("shm transport: keepalive watchdog timeout (",
                                              t->peer_string, " did not answer a ping within ",
                                              t->keepalive.timeout.millis(), " ms)")));
      return;
    }
    t->keepalive_pinging = false;
    ArmKeepaliveTimerLocked(t, std::max(now, t->keepalive_sent + t->keepalive.time));
    return;
  }
  if (t->streams.empty() && !t->keepalive.permit_without_calls) {
    ArmKeepaliveTimerLocked(t, now + t->keepalive.time);  // nothing that could hang
    return;
  }
  t->keepalive_seq = t->connection->SendKeepalivePing();
  t->keepalive_sent = now;
  t->keepalive_pinging = true;
  ArmKeepaliveTimerLocked(t, now + std::min(t->keepalive.time, t->keepalive.timeout));
}

void OnKeepaliveTimer(void* arg, grpc_error_handle error) {
  auto* t = static_cast<ShmTransport*>(arg);
  TakeOver(t);
  {
    std::lock_guard<std::mutex> lock(t->mu);
    t->keepalive_timer_armed = false;
    if (error.ok() && !t->closed) OnKeepaliveDueLocked(t);
  }
  UnrefTransport(t);  // the fired timer's
}

void ArmKeepaliveTimerLocked(ShmTransport* t, Timestamp due) {
  t->keepalive_timer_armed = true;
  RefTransport(t);  // the timer's, dropped in OnKeepaliveTimer
  HandOff(t);
  grpc_timer_init(&t->keepalive_timer, due, &t->on_keepalive_timer);
}

}  // namespace

void NoteKeepalivePingAnswered() { g_pings_answered.fetch_add(1, std::memory_order_relaxed); }

uint64_t KeepalivePingsAnswered() { return g_pings_answered.load(std::memory_order_relaxed); }

void StartKeepaliveLocked(ShmTransport* t) {
  if (!t->keepalive.enabled() || t->closed || t->keepalive_timer_armed) return;
  if (ExecCtx::Get() == nullptr) {  // every caller has one; timers need it
    gpr_log(GPR_ERROR, "grpc_shm: keepalive not started (no ExecCtx)");
    return;
  }
  GRPC_CLOSURE_INIT(&t->on_keepalive_timer, OnKeepaliveTimer, t, nullptr);
  ArmKeepaliveTimerLocked(t, Timestamp::Now() + t->keepalive.time);
}

void StopKeepaliveLocked(ShmTransport* t) {
  if (t->keepalive_timer_armed) grpc_timer_cancel(&t->keepalive_timer);  // runs OnKeepaliveTimer
}

}  // namespace transport
}  // namespace grpc_shm
