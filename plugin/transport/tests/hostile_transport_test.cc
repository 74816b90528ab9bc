// A hostile client against a real gRPC server in another process: a peer
// that speaks grpc-shm's wire protocol itself (raw_peer.h) and ignores one
// rule at a time, while an honest gRPC client keeps calling the same
// server. In every case the server stays up, keeps answering the honest
// client, and what it holds (memory, descriptors, ring mappings, threads)
// stays bounded and comes back once the offender is gone.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "echo_test.grpc.pb.h"
#include "grpc_shm/grpc_shm.h"
#include "plugin/ipc/frame_format.h"
#include "raw_peer.h"
#include "server_process.h"
#include "test_address.h"

namespace grpc_shm {
namespace {

using test::EchoRequest;
using test::EchoResponse;
using test::EchoTest;
using testing::DescribeDescriptors;
using testing::ProcessUsage;
using testing::RawPeer;
using testing::ServerProcess;
using testing::UsageOf;
using namespace std::chrono_literals;

constexpr char kUnary[] = "/grpc_shm.test.EchoTest/Unary";

constexpr int kGrpcPoolSlack = 8;

// Sanitizers add shadow memory and keep freed memory in quarantine, so the
// memory bounds below are looser there; the normal build checks them as
// they are.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr size_t kRssScale = 4;
#else
constexpr size_t kRssScale = 1;
#endif
constexpr size_t kMiB = size_t{1} << 20;

// Polls `condition` (a /proc reading has no event to wait on) until it
// holds or `timeout` passes.
bool Eventually(const std::function<bool()>& condition, std::chrono::seconds timeout = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

std::string WaitForCancelRequest() {
  EchoRequest req;
  req.set_message("hold");
  req.set_wait_for_cancel(true);
  return req.SerializeAsString();
}

class HostileTransportTest : public ::testing::Test {
 protected:
  void StartServer(std::vector<std::string> extra_args = {}) {
    address_ = grpc_shm::testing::TestIpcAddress(
        "grpc_shm_hostile_" + std::to_string(getpid()) + "_" +
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::vector<std::string> args = {
        GRPC_SHM_ECHO_SERVER, "--shm=" + grpc_shm::testing::ShmTargetFor(address_), "--tcp=-1",
        // gRPC's default, not the 128 MiB of the e2e tests.
        "--channel-arg=grpc.max_receive_message_length=4194304"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    server_ = std::make_unique<ServerProcess>(args);
    ASSERT_TRUE(server_->ok()) << "echo_test_server did not start";
    stub_ = EchoTest::NewStub(
        grpc::CreateChannel(grpc_shm::testing::ShmTargetFor(address_), ChannelCredentials()));
    ExpectHonestCallWorks();  // the honest client is connected before the baseline
    baseline_ = UsageOf(server_->pid());
    baseline_descriptors_ = DescribeDescriptors(server_->pid());
  }

  void ExpectHonestCallWorks() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    EchoRequest req;
    req.set_message("honest");
    EchoResponse resp;
    grpc::Status status = stub_->Unary(&ctx, req, &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(resp.message(), "honest");
  }

  std::unique_ptr<RawPeer> ConnectRaw() {
    ipc::Status status;
    auto peer = RawPeer::Connect(address_, &status);
    EXPECT_TRUE(peer != nullptr) << status.ToString();
    return peer;
  }

  // Once the offender is gone, the server holds what it held before it came
  // (memory may stay with the allocator, but not more than `rss_slack`).
  void ExpectBackToBaseline(size_t rss_slack_kib = 64 * 1024) {
    const pid_t pid = server_->pid();
    EXPECT_TRUE(Eventually([&] {
      ProcessUsage now = UsageOf(pid);
      // gRPC's executor and event-engine pools grow on demand under load
      // and keep their threads: a few more than at the start is gRPC's, a
      // thread per connection or per frame would be ours.
      // gRPC's poll engine (the portable build's) caches a wake-up eventfd
      // per polling thread: as many more as gRPC has threads more are its.
      const int grpc_wakeups = std::max(0, now.threads - baseline_.threads);
      return now.descriptors - now.eventfds <= baseline_.descriptors - baseline_.eventfds &&
             now.eventfds <= baseline_.eventfds + grpc_wakeups &&
             now.memfd_mappings <= baseline_.memfd_mappings &&
             now.threads <= baseline_.threads + kGrpcPoolSlack;
    })) << "descriptors "
        << UsageOf(pid).descriptors << " (was " << baseline_.descriptors << "), memfd mappings "
        << UsageOf(pid).memfd_mappings << " (was " << baseline_.memfd_mappings << "), threads "
        << UsageOf(pid).threads << " (was " << baseline_.threads
        << "); descriptors now:" << DescribeDescriptors(pid)
        << "; before:" << baseline_descriptors_;
    EXPECT_LT(UsageOf(pid).rss_kib, baseline_.rss_kib + rss_slack_kib * kRssScale);
    ExpectHonestCallWorks();
  }

  size_t RssGrowthKib() const {
    size_t now = UsageOf(server_->pid()).rss_kib;
    return now > baseline_.rss_kib ? now - baseline_.rss_kib : 0;
  }

  // The figure the closing notes quote: what the offender made the server
  // hold at its worst (read after the attack, before the offender leaves).
  void ReportGrowth(const std::string& what) {
    ProcessUsage now = UsageOf(server_->pid());
    std::printf("[ info ] %s: server RSS %+.1f MiB, descriptors %+d, threads %+d\n", what.c_str(),
                (static_cast<double>(now.rss_kib) - baseline_.rss_kib) / 1024,
                now.descriptors - baseline_.descriptors, now.threads - baseline_.threads);
  }

  std::string address_;  // "@name" or a socket file (test_address.h)
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<EchoTest::Stub> stub_;
  ProcessUsage baseline_;
  std::string baseline_descriptors_;
};

// ---- flow control

TEST_F(HostileTransportTest, MessageStartedWithTheWindowSpentIsAConnectionError) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto peer = ConnectRaw();
  ASSERT_TRUE(peer);
  ASSERT_TRUE(peer->OpenStream(1, kUnary).ok());
  ASSERT_TRUE(peer->SendMessage(1, WaitForCancelRequest()).ok());
  // gRPC takes the request and nothing more: every further message waits in
  // the server against the stream's 4 MiB window, which the peer ignores.
  const std::string chunk(128 * 1024, 'x');
  bool refused = false;
  for (int i = 0; i < 64 && !refused; ++i) {
    refused = !peer->SendMessage(1, chunk).ok();
    ExpectHonestCallWorks();
  }
  EXPECT_TRUE(refused || peer->WaitForHangup()) << "the server never hung up";
  ReportGrowth("messages beyond the window");
  EXPECT_LT(RssGrowthKib(), 32 * 1024u * kRssScale);
  peer.reset();
  ExpectBackToBaseline();
}

TEST_F(HostileTransportTest, ZeroLengthMessagesCountAgainstTheWindow) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto peer = ConnectRaw();
  ASSERT_TRUE(peer);
  ASSERT_TRUE(peer->OpenStream(1, kUnary).ok());
  ASSERT_TRUE(peer->SendMessage(1, WaitForCancelRequest()).ok());
  // 3 M empty messages would be 3 M queue entries if they were free.
  int sent = 0;
  for (; sent < 3000000; ++sent) {
    if (!peer->SendMessage(1, "").ok()) break;
  }
  EXPECT_LT(sent, 3000000) << "the server took every empty message";
  EXPECT_TRUE(peer->WaitForHangup());
  ReportGrowth(std::to_string(sent) + " empty messages sent before the hang-up");
  EXPECT_LT(RssGrowthKib(), 64 * 1024u * kRssScale);
  ExpectHonestCallWorks();
  peer.reset();
  ExpectBackToBaseline();
}

TEST_F(HostileTransportTest, MessageLargerThanTheLimitIsRefusedWhileItArrives) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto peer = ConnectRaw();
  ASSERT_TRUE(peer);
  ASSERT_TRUE(peer->OpenStream(1, kUnary).ok());
  // One message that never ends: 256 MiB of chunks against a 4 MiB limit
  // (1 GiB with GRPC_SHM_HOSTILE_FULL=1, the size the issue measured).
  const std::string chunk(128 * 1024, 'x');
  const int chunks = getenv("GRPC_SHM_HOSTILE_FULL") != nullptr ? 8192 : 2048;
  for (int i = 0; i < chunks; ++i) {
    ASSERT_TRUE(peer->Send(ipc::kFrameMessage, 1, ipc::kFlagMoreChunks, 0, chunk).ok()) << i;
    // The server's answers must not fill our ring while we write.
    if (i % 64 == 0) {
      RawPeer::Frame frame;
      while (peer->Read(&frame, 0ms).ok()) {
      }
    }
  }
  ReportGrowth(std::to_string(chunks / 8) + " MiB of one unfinished message");
  EXPECT_LT(RssGrowthKib(), 32 * 1024u * kRssScale) << "the server buffered the message";
  // The call failed as gRPC's size filter would fail it, the connection
  // lives on.
  ASSERT_TRUE(peer->Send(ipc::kFrameMessage, 1, 0, 0, chunk).ok());
  ASSERT_TRUE(peer->OpenStream(3, kUnary).ok());
  EchoRequest req;
  req.set_message("after");
  ASSERT_TRUE(peer->SendMessage(3, req.SerializeAsString()).ok());
  ASSERT_TRUE(peer->Send(ipc::kFrameTrailingMetadata, 3, 0, 0, testing::MetadataBlock({})).ok());
  RawPeer::Frame frame;
  ASSERT_TRUE(peer->ReadUntil(ipc::kFrameTrailingMetadata, 3, &frame).ok());
  ExpectHonestCallWorks();
  peer.reset();
  ExpectBackToBaseline();
}

TEST_F(HostileTransportTest, ChunksOfTwoMessagesMayNotInterleave) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto peer = ConnectRaw();
  ASSERT_TRUE(peer);
  ASSERT_TRUE(peer->OpenStream(1, kUnary).ok());
  ASSERT_TRUE(peer->OpenStream(3, kUnary).ok());
  ASSERT_TRUE(peer->Send(ipc::kFrameMessage, 1, ipc::kFlagMoreChunks, 0, "a").ok());
  ASSERT_TRUE(peer->Send(ipc::kFrameMessage, 3, ipc::kFlagMoreChunks, 0, "b").ok());
  EXPECT_TRUE(peer->WaitForHangup());
  ExpectHonestCallWorks();
  peer.reset();
  ExpectBackToBaseline();
}

// A sender announces each message's length (aux of its chunks); a large one
// is assembled in one buffer of that length. The claim reserves address
// space, not memory, and a message that runs past it ends the connection.
TEST_F(HostileTransportTest, AnnouncedMessageLengthIsNeitherTrustedNorExceeded) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--channel-arg=grpc.max_receive_message_length=16777216"}));
  const uint32_t announced = 16u << 20;
  // Eight peers each announce 16 MiB and send 128 KiB of it: 128 MiB claimed.
  std::vector<std::unique_ptr<RawPeer>> claimers;
  const std::string chunk(128 * 1024, 'x');
  for (int i = 0; i < 8; ++i) {
    claimers.push_back(ConnectRaw());
    ASSERT_TRUE(claimers.back());
    ASSERT_TRUE(claimers.back()->OpenStream(1, kUnary).ok());
    ASSERT_TRUE(
        claimers.back()->Send(ipc::kFrameMessage, 1, ipc::kFlagMoreChunks, announced, chunk).ok());
  }
  ExpectHonestCallWorks();
  ReportGrowth("8 messages announced at 16 MiB, 128 KiB of each sent");
  // Committed as written: at most a 2 MiB huge page per message so far (plus
  // the rings), not the 128 MiB claimed.
  EXPECT_LT(RssGrowthKib(), 32 * 1024u * kRssScale) << "announced lengths were committed";
  // A message shorter than announced is just shorter: it arrives whole.
  EchoRequest req;
  req.set_message("short");
  req.set_payload(std::string(6u << 20, 'p'));
  const std::string bytes = req.SerializeAsString();
  auto& short_peer = claimers[0];
  ASSERT_TRUE(short_peer->OpenStream(3, kUnary).ok());
  // Stream 1's message is unfinished: end it first (its call then fails to
  // parse 128 KiB of 'x', which is its own business).
  ASSERT_TRUE(short_peer->Send(ipc::kFrameMessage, 1, 0, announced, "").ok());
  for (size_t off = 0; off < bytes.size(); off += chunk.size()) {
    const size_t n = std::min(chunk.size(), bytes.size() - off);
    const uint8_t more = off + n < bytes.size() ? ipc::kFlagMoreChunks : 0;
    ASSERT_TRUE(
        short_peer->Send(ipc::kFrameMessage, 3, more, announced, bytes.substr(off, n)).ok());
  }
  ASSERT_TRUE(
      short_peer->Send(ipc::kFrameTrailingMetadata, 3, 0, 0, testing::MetadataBlock({})).ok());
  RawPeer::Frame frame;
  // An answer at all means the server parsed the whole request.
  ASSERT_TRUE(short_peer->ReadUntil(ipc::kFrameMessage, 3, &frame).ok());
  EXPECT_NE(frame.payload.find("short"), std::string::npos);
  // A message that runs past its announcement: 4 MiB announced, 4.125 sent.
  auto& liar = claimers[1];
  ASSERT_TRUE(liar->Send(ipc::kFrameMessage, 1, 0, announced, "").ok());  // end the first
  ASSERT_TRUE(liar->OpenStream(3, kUnary).ok());
  bool refused = false;
  for (int i = 0; i < 33 && !refused; ++i) {
    refused = !liar->Send(ipc::kFrameMessage, 3, ipc::kFlagMoreChunks, 4u << 20, chunk).ok();
  }
  EXPECT_TRUE(refused || liar->WaitForHangup()) << "the server took more than was announced";
  ExpectHonestCallWorks();
  claimers.clear();
  ExpectBackToBaseline();
}

// ---- frames the peer makes us send

TEST_F(HostileTransportTest, PingFloodEndsInGoaway) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto peer = ConnectRaw();
  ASSERT_TRUE(peer);
  for (int i = 0; i < 2000000; ++i) {
    if (!peer->TrySend(ipc::kFramePing, 0, 0, i).ok()) break;
  }
  RawPeer::Frame frame;
  ipc::Status status = peer->ReadUntil(ipc::kFrameGoaway, 0, &frame);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_NE(frame.payload.find("too_many_pings"), std::string::npos) << frame.payload;
  EXPECT_TRUE(peer->WaitForHangup());
  ReportGrowth("ping flood");
  ExpectHonestCallWorks();
  peer.reset();
  ExpectBackToBaseline();
}

TEST_F(HostileTransportTest, PeerThatNeverReadsItsAnswersIsThrottled) {
  // Pings allowed (no strikes): the server answers each, the peer never
  // reads the answers. Once its ring and 10000 queued answers are full the
  // server stops reading from this peer, so the peer's own ring fills.
  ASSERT_NO_FATAL_FAILURE(StartServer({"--channel-arg=grpc.http2.max_ping_strikes=0"}));
  auto peer = ConnectRaw();
  ASSERT_TRUE(peer);
  int sent = 0;
  for (; sent < 2000000; ++sent) {
    ipc::Status status = peer->Send(ipc::kFramePing, 0, 0, sent, {}, 2000ms);
    if (!status.ok()) {
      EXPECT_EQ(status.code(), ipc::StatusCode::kTimeout) << status.ToString();
      break;
    }
  }
  EXPECT_LT(sent, 2000000) << "the server read every ping";
  ReportGrowth(std::to_string(sent) + " pings sent, answers never read");
  EXPECT_LT(RssGrowthKib(), 32 * 1024u * kRssScale);
  ExpectHonestCallWorks();
  // A throttled peer that reads again is answered again.
  RawPeer::Frame frame;
  int acks = 0;
  while (peer->Read(&frame, 1000ms).ok()) ++acks;
  EXPECT_GT(acks, 0);
  peer.reset();
  ExpectBackToBaseline();
}

// ---- streams

TEST_F(HostileTransportTest, StreamsBeyondTheAnnouncedLimitAreRefused) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--channel-arg=grpc.max_concurrent_streams=8"}));
  auto peer = ConnectRaw();
  ASSERT_TRUE(peer);
  EXPECT_EQ(peer->max_concurrent_streams(), 8u);
  for (uint32_t id = 1; id <= 17; id += 2) {
    ASSERT_TRUE(peer->OpenStream(id, kUnary).ok());
  }
  // The ninth stream is refused unseen, so a client may retry it.
  RawPeer::Frame frame;
  ASSERT_TRUE(peer->ReadUntil(ipc::kFrameReset, 17, &frame).ok());
  EXPECT_NE(frame.header.flags & ipc::kFlagRefusedStream, 0);
  EXPECT_EQ(frame.header.aux, static_cast<uint32_t>(grpc::StatusCode::UNAVAILABLE));
  ExpectHonestCallWorks();
  peer.reset();
  ExpectBackToBaseline();
}

TEST_F(HostileTransportTest, StreamFloodCostsBoundedMemoryAndEndsInGoaway) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto peer = ConnectRaw();
  ASSERT_TRUE(peer);
  // 200 k streams opened with initial metadata only: the server takes its
  // limit of them (4096) and refuses the rest until the peer has used up its
  // refusals.
  bool closed = false;
  uint32_t opened = 0;
  for (uint32_t i = 0; i < 200000 && !closed; ++i, ++opened) {
    closed = !peer->OpenStream(2 * i + 1, kUnary).ok();
    if (i % 256 == 0) {
      RawPeer::Frame frame;
      ipc::Status status;
      while ((status = peer->Read(&frame, 0ms)).ok()) {
      }
      closed = closed || status.code() == ipc::StatusCode::kPeerClosed;
    }
  }
  EXPECT_TRUE(closed || peer->WaitForHangup());
  ReportGrowth("stream flood, " + std::to_string(opened) + " streams opened");
  EXPECT_LT(RssGrowthKib(), 256 * 1024u * kRssScale);
  ExpectHonestCallWorks();
  peer.reset();
  ExpectBackToBaseline();
}

TEST_F(HostileTransportTest, RapidResetEndsInGoaway) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto peer = ConnectRaw();
  ASSERT_TRUE(peer);
  bool closed = false;
  for (uint32_t i = 0; i < 100000 && !closed; ++i) {
    const uint32_t id = 2 * i + 1;
    closed = !peer->OpenStream(id, kUnary).ok() ||
             !peer->Send(ipc::kFrameReset, id, 0, GRPC_STATUS_CANCELLED).ok();
    if (i % 256 == 0) {
      RawPeer::Frame frame;
      ipc::Status status;
      while ((status = peer->Read(&frame, 0ms)).ok()) {
      }
      closed = closed || status.code() == ipc::StatusCode::kPeerClosed;
    }
  }
  EXPECT_TRUE(closed || peer->WaitForHangup()) << "the server took every reset";
  ExpectHonestCallWorks();
  peer.reset();
  ExpectBackToBaseline();
}

// ---- metadata

TEST_F(HostileTransportTest, IllegalMetadataFailsOnlyItsStream) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto peer = ConnectRaw();
  ASSERT_TRUE(peer);
  struct Case {
    std::vector<std::pair<std::string, std::string>> entries;
    grpc::StatusCode code;
  };
  const std::vector<Case> cases = {
      {{{":path", kUnary}, {"Bad Key", "v"}}, grpc::StatusCode::INTERNAL},
      {{{":path", kUnary}, {"x-text", "line\r\nx-injected: 1"}}, grpc::StatusCode::INTERNAL},
      {{{":path", kUnary}, {"x-nul", std::string("a\0b", 3)}}, grpc::StatusCode::INTERNAL},
      {{{":path", kUnary}, {"x-big", std::string(16 * 1024, 'v')}},
       grpc::StatusCode::RESOURCE_EXHAUSTED},
  };
  uint32_t id = 1;
  for (const Case& c : cases) {
    ASSERT_TRUE(
        peer->Send(ipc::kFrameInitialMetadata, id, 0, 0, testing::MetadataBlock(c.entries)).ok());
    RawPeer::Frame frame;
    ASSERT_TRUE(peer->ReadUntil(ipc::kFrameReset, id, &frame).ok()) << id;
    EXPECT_EQ(frame.header.aux, static_cast<uint32_t>(c.code)) << frame.payload;
    id += 2;
  }
  // The connection lives on: a proper call on it still works.
  ASSERT_TRUE(peer->OpenStream(id, kUnary).ok());
  ASSERT_TRUE(peer->SendMessage(id, EchoRequest().SerializeAsString()).ok());
  ASSERT_TRUE(peer->Send(ipc::kFrameTrailingMetadata, id, 0, 0, testing::MetadataBlock({})).ok());
  RawPeer::Frame frame;
  ASSERT_TRUE(peer->ReadUntil(ipc::kFrameTrailingMetadata, id, &frame).ok());
  ExpectHonestCallWorks();
  peer.reset();
  ExpectBackToBaseline();
}

TEST_F(HostileTransportTest, ReservedInternalMetadataIsDroppedOnReceive) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto peer = ConnectRaw();
  ASSERT_TRUE(peer);
  ASSERT_TRUE(peer->Send(ipc::kFrameInitialMetadata, 1, 0, 0,
                         testing::MetadataBlock({{":path", kUnary},
                                                 {"grpc-internal-encoding-request", "gzip"},
                                                 {"x-echo", "kept"}}))
                  .ok());
  ASSERT_TRUE(peer->SendMessage(1, EchoRequest().SerializeAsString()).ok());
  ASSERT_TRUE(peer->Send(ipc::kFrameTrailingMetadata, 1, 0, 0, testing::MetadataBlock({})).ok());
  RawPeer::Frame frame;
  ASSERT_TRUE(peer->ReadUntil(ipc::kFrameTrailingMetadata, 1, &frame).ok());
  EXPECT_NE(frame.payload.find("grpc-status"), std::string::npos);
  EXPECT_EQ(frame.payload.find("grpc-internal"), std::string::npos);
  peer.reset();
  ExpectBackToBaseline();
}

// gRPC 1.51 reads grpc-status straight into its enum (undefined behaviour
// for -128, found by transport_inbound_fuzzer under UBSan): a code out of
// range is taken as UNKNOWN, the call goes on.
TEST_F(HostileTransportTest, OutOfRangeStatusCodeIsTakenAsUnknown) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto peer = ConnectRaw();
  ASSERT_TRUE(peer);
  ASSERT_TRUE(peer->Send(ipc::kFrameInitialMetadata, 1, 0, 0,
                         testing::MetadataBlock({{":path", kUnary}, {"grpc-status", "-128"}}))
                  .ok());
  ASSERT_TRUE(peer->SendMessage(1, EchoRequest().SerializeAsString()).ok());
  ASSERT_TRUE(peer->Send(ipc::kFrameTrailingMetadata, 1, 0, 0,
                         testing::MetadataBlock({{"grpc-status", "99999999999"}}))
                  .ok());
  RawPeer::Frame frame;
  ASSERT_TRUE(peer->ReadUntil(ipc::kFrameTrailingMetadata, 1, &frame).ok());
  EXPECT_NE(frame.payload.find("grpc-status"), std::string::npos);
  ExpectHonestCallWorks();
}

// ---- an honest gRPC client against a server's limit

TEST_F(HostileTransportTest, ClientQueuesCallsAboveTheServersStreamLimit) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--channel-arg=grpc.max_concurrent_streams=2"}));
  // Five calls that each stay open on the server until cancelled, on one
  // connection that may carry two: three wait in the client (a refused
  // stream retried at once would spin until the server runs out of patience
  // and closes the connection: UNAVAILABLE).
  constexpr int kCalls = 5;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<grpc::ClientContext> contexts(kCalls);
  std::vector<bool> started(kCalls, false);
  std::vector<grpc::StatusCode> codes(kCalls, grpc::StatusCode::OK);
  std::vector<std::thread> calls;
  for (int i = 0; i < kCalls; ++i) {
    calls.emplace_back([&, i] {
      EchoRequest req;
      req.set_message("queued");
      req.set_count(1);
      req.set_wait_for_cancel(true);
      auto reader = stub_->ServerStream(&contexts[i], req);
      EchoResponse resp;
      const bool ok = reader->Read(&resp);
      {
        std::lock_guard<std::mutex> lock(mu);
        started[i] = ok;
      }
      cv.notify_all();
      grpc::Status status = reader->Finish();
      std::lock_guard<std::mutex> lock(mu);
      codes[i] = status.error_code();
    });
  }
  // Ends the calls on the server one at a time, each once it is running
  // there, so every waiting call gets its turn.
  std::vector<bool> cancelled(kCalls, false);
  for (int n = 0; n < kCalls; ++n) {
    std::unique_lock<std::mutex> lock(mu);
    int running = -1;
    ASSERT_TRUE(cv.wait_for(lock, 30s,
                            [&] {
                              for (int i = 0; i < kCalls; ++i) {
                                if (started[i] && !cancelled[i]) running = i;
                              }
                              return running >= 0;
                            }))
        << n << " calls got to the server";
    cancelled[running] = true;
    contexts[running].TryCancel();
  }
  for (auto& call : calls) call.join();
  for (int i = 0; i < kCalls; ++i) EXPECT_EQ(codes[i], grpc::StatusCode::CANCELLED) << i;
  ExpectHonestCallWorks();
}

// ---- the client's side: a server that speaks the wire protocol itself

// The server's end of one connection, for tests that play the server.
class RawServerSide {
 public:
  explicit RawServerSide(std::unique_ptr<ipc::Connection> conn) : conn_(std::move(conn)) {}

  // The server's first frame: its stream limit.
  bool SendSettings() { return Send(ipc::kFrameSettings, 0, {}, /*aux=*/100); }
  // One frame, waiting for ring space.
  bool Send(uint8_t type, uint32_t id, const std::string& payload, uint32_t aux = 0) {
    ipc::FrameHeader h{};
    h.type = type;
    h.stream_id = id;
    h.aux = aux;
    h.payload_size = static_cast<uint32_t>(payload.size());
    ipc::ConstByteSpan part{reinterpret_cast<const uint8_t*>(payload.data()), payload.size()};
    ipc::Status status = conn_->WriteFrame(h, &part, 1, ipc::Connection::Clock::now() + 20s);
    last_error_ = status.ToString();
    return status.ok();
  }
  // Reads the client's frames up to and including the first of `type`;
  // that frame's stream id, or 0 if none came.
  uint32_t ReadUntil(uint8_t type) {
    for (;;) {
      ipc::FrameView frame;
      ipc::Status status = conn_->ReadFrame(&frame, ipc::Connection::Clock::now() + 10s);
      if (!status.ok()) {
        last_error_ = status.ToString();
        return 0;
      }
      const ipc::FrameHeader header = frame.header;
      conn_->Consume();
      if (header.type == type) return header.stream_id;
    }
  }
  // Answers call `id` with `response` and OK.
  bool Answer(uint32_t id, const EchoResponse& response) {
    return Send(ipc::kFrameInitialMetadata, id, testing::MetadataBlock({})) &&
           Send(ipc::kFrameMessage, id, response.SerializeAsString()) &&
           Send(ipc::kFrameTrailingMetadata, id, testing::MetadataBlock({{"grpc-status", "0"}}));
  }
  void HangUp() { conn_.reset(); }
  const std::string& last_error() const { return last_error_; }

 private:
  std::unique_ptr<ipc::Connection> conn_;
  std::string last_error_;
};

// A listener on a fresh address for a test that plays the server.
std::unique_ptr<ipc::Listener> RawServerListener(const std::string& name, std::string* address) {
  *address = grpc_shm::testing::TestIpcAddress(name + "_" + std::to_string(getpid()));
  std::unique_ptr<ipc::Listener> listener;
  if (!ipc::Listener::Listen(*address, ipc::Listener::Options(), &listener).ok()) return nullptr;
  return listener;
}

// A server that answers one server-streaming call completely (messages and
// status) and hangs up before the client's application has read any of it,
// while the client's transport has paused reading at its inbound cap. What
// arrived before the hang-up is the client's: the call completes with every
// message and OK. (Before, the hang-up closed the connection with the rest
// of the ring unread, and the finished call failed with UNAVAILABLE.)
TEST(HostileServerTest, HangUpWhileTheClientPausedReadingLosesNothing) {
  std::string address;
  auto listener = RawServerListener("grpc_shm_raw_server", &address);
  ASSERT_NE(listener, nullptr);
  constexpr int kMessages = 24;  // 1.5 MiB: past the client's 1 MiB cap
  std::mutex mu;
  std::condition_variable cv;
  bool hung_up = false;
  std::string server_error;
  std::thread server([&] {
    auto done = [&](const std::string& error) {
      std::lock_guard<std::mutex> lock(mu);
      server_error = error;
      hung_up = true;
      cv.notify_all();
    };
    std::unique_ptr<ipc::Connection> accepted;
    if (!listener->Accept(&accepted, 10000).ok()) return done("accept");
    RawServerSide conn(std::move(accepted));
    if (!conn.SendSettings()) return done("settings");
    // The client's call: initial metadata, its request, its half-close.
    const uint32_t id = conn.ReadUntil(ipc::kFrameTrailingMetadata);
    if (id == 0) return done("reading the call: " + conn.last_error());
    if (!conn.Send(ipc::kFrameInitialMetadata, id, testing::MetadataBlock({}))) {
      return done("headers");
    }
    EchoResponse resp;
    resp.set_payload(std::string(64 << 10, 'p'));
    for (int i = 0; i < kMessages; ++i) {
      resp.set_message(std::to_string(i));
      if (!conn.Send(ipc::kFrameMessage, id, resp.SerializeAsString())) {
        return done("message " + std::to_string(i) + ": " + conn.last_error());
      }
    }
    if (!conn.Send(ipc::kFrameTrailingMetadata, id,
                   testing::MetadataBlock({{"grpc-status", "0"}}))) {
      return done("status");
    }
    conn.HangUp();
    done("");
  });
  grpc::ChannelArguments args;
  args.SetInt("grpc_shm.max_inbound_bytes", 1 << 20);
  // A ring that holds the whole answer, so the server never waits for the
  // client, and the dedicated poller thread, which reads the ring as frames
  // arrive: the client pauses at its cap, the status still unread in the ring,
  // and sees the hang-up while paused.
  ShmOptions options;
  options.ring_bytes = 4 << 20;
  setenv("GRPC_SHM_POLLER", "thread", 1);
  auto channel = grpc::CreateCustomChannel(grpc_shm::testing::ShmTargetFor(address),
                                           ChannelCredentials(options), args);
  auto stub = EchoTest::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 30s);
  auto reader = stub->ServerStream(&ctx, EchoRequest());
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return hung_up; });
  }
  server.join();
  unsetenv("GRPC_SHM_POLLER");
  ASSERT_EQ(server_error, "");
  // The client's transport has handled the hang-up (and closed) before the
  // application reads anything.
  while (channel->GetState(false) == GRPC_CHANNEL_READY) {
    ASSERT_TRUE(
        channel->WaitForStateChange(GRPC_CHANNEL_READY, std::chrono::system_clock::now() + 20s));
  }
  EchoResponse resp;
  int received = 0;
  while (reader->Read(&resp)) {
    EXPECT_EQ(resp.message(), std::to_string(received));
    ++received;
  }
  grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(received, kMessages);
}

// The race a server's GOAWAY opens (max_connection_age, shutdown): a client
// sends calls before it has read the GOAWAY, which says the server took no
// stream above its last id. Those calls, and calls still waiting in the
// client for a stream slot, are retried on a new connection and succeed,
// whether the old connection stays open (a server draining older calls) or
// is hung up (an idle server). Before, the call on the wire failed with
// UNAVAILABLE at the hang-up or waited for an answer that never came, and
// the waiting call went out on the old connection to be ignored; chttp2
// over a Unix socket loses the hang-up race as "Broken pipe" when its
// write comes second.
class GoawayTest : public ::testing::TestWithParam<bool> {};

TEST_P(GoawayTest, CallsTheServerNeverSawAreRetriedOnANewConnection) {
  const bool hang_up = GetParam();
  std::string address;
  auto listener = RawServerListener("grpc_shm_goaway_server", &address);
  ASSERT_NE(listener, nullptr);
  std::mutex mu;
  std::condition_variable cv;
  bool first_call_arrived = false;
  bool second_call_started = false;
  std::string server_error;
  std::thread server([&] {
    auto fail = [&](const std::string& why) {
      std::lock_guard<std::mutex> lock(mu);
      server_error = why;
      first_call_arrived = true;  // the test stops waiting
      cv.notify_all();
    };
    // First connection: one stream at a time, so the second call waits in
    // the client. The first call arrives; once the second is started the
    // server says it took no stream (last id 0).
    std::unique_ptr<ipc::Connection> accepted;
    if (!listener->Accept(&accepted, 10000).ok()) return fail("first accept");
    RawServerSide first(std::move(accepted));
    if (!first.Send(ipc::kFrameSettings, 0, {}, /*aux=*/1) ||
        first.ReadUntil(ipc::kFrameInitialMetadata) == 0) {
      return fail("first connection: " + first.last_error());
    }
    {
      std::unique_lock<std::mutex> lock(mu);
      first_call_arrived = true;
      cv.notify_all();
      cv.wait(lock, [&] { return second_call_started; });
    }
    if (!first.Send(ipc::kFrameGoaway, 0, "max_age", /*aux=*/0)) {
      return fail("goaway: " + first.last_error());
    }
    if (hang_up) first.HangUp();
    // Second connection: both calls, answered.
    if (!listener->Accept(&accepted, 20000).ok()) {
      return fail("the calls never came back on a second connection");
    }
    RawServerSide second(std::move(accepted));
    if (!second.SendSettings()) return fail("second settings: " + second.last_error());
    for (int i = 0; i < 2; ++i) {
      const uint32_t id = second.ReadUntil(ipc::kFrameTrailingMetadata);
      EchoResponse resp;
      resp.set_message("retried");
      if (id == 0 || !second.Answer(id, resp)) {
        return fail("second connection: " + second.last_error());
      }
    }
    // Had the waiting call gone out on the old connection after the GOAWAY,
    // its frames would be there (and it would never be answered).
    if (!hang_up && first.ReadUntil(ipc::kFrameInitialMetadata) != 0) {
      fail("a call went out on the old connection after its GOAWAY");
    }
  });
  auto channel = grpc::CreateChannel(grpc_shm::testing::ShmTargetFor(address),
                                     ChannelCredentials(ShmOptions()));
  auto stub = EchoTest::NewStub(channel);
  grpc::CompletionQueue cq;
  struct Call {
    grpc::ClientContext ctx;
    EchoResponse resp;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<EchoResponse>> reader;
  };
  Call calls[2];
  auto start = [&](int i) {
    calls[i].ctx.set_deadline(std::chrono::system_clock::now() + 20s);
    EchoRequest req;
    req.set_message("once");
    calls[i].reader = stub->AsyncUnary(&calls[i].ctx, req, &cq);
    calls[i].reader->Finish(&calls[i].resp, &calls[i].status, &calls[i]);
  };
  start(0);
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return first_call_arrived; });
  }
  // Started once the first holds the connection's one stream: it waits in
  // the client's transport for that stream to end.
  start(1);
  {
    std::lock_guard<std::mutex> lock(mu);
    second_call_started = true;
    cv.notify_all();
  }
  for (int done = 0; done < 2; ++done) {
    void* tag = nullptr;
    bool ok = false;
    ASSERT_TRUE(cq.Next(&tag, &ok));
  }
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(calls[i].status.ok())
        << i << ": " << calls[i].status.error_code() << " " << calls[i].status.error_message();
    EXPECT_EQ(calls[i].resp.message(), "retried") << i;
  }
  server.join();
  EXPECT_EQ(server_error, "");
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
}

INSTANTIATE_TEST_SUITE_P(OldConnection, GoawayTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "HungUp" : "KeptOpen";
                         });

}  // namespace
}  // namespace grpc_shm
