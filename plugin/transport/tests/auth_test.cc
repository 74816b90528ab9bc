// Identity and authorisation over shm: the auth context a server call sees,
// AuthMetadataProcessors on shm ports (and, as the oracle, on a TCP port of
// the same server), and a client that requires the server's uid. Servers run
// in this process unless the test needs another user: then echo_test_server
// runs as "nobody" in a child process.
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/auth_metadata_processor.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "echo_test.grpc.pb.h"
#include "grpc_shm/grpc_shm.h"
#include "server_process.h"
#include "test_address.h"

namespace grpc_shm {
namespace {

using test::EchoRequest;
using test::EchoResponse;
using test::EchoTest;
using testing::ServerProcess;
using Properties = std::multimap<std::string, std::string>;

// The user the cross-user tests drop to (Debian's "nobody" / "nogroup").
constexpr uid_t kNobodyUid = 65534;
constexpr gid_t kNogroupGid = 65534;

std::string UniqueAbstractAddress() {
  static std::atomic<int> counter{0};
  return grpc_shm::testing::TestShmTarget("grpc_shm_auth_" + std::to_string(getpid()) + "_" +
                                          std::to_string(counter++));
}

Properties PropertiesOf(const grpc::AuthContext& context) {
  Properties out;
  for (const grpc::AuthProperty& p : context) {
    out.emplace(std::string(p.first.data(), p.first.size()),
                std::string(p.second.data(), p.second.size()));
  }
  return out;
}

// Encodes a property map in a response, and back.
std::string Encode(const Properties& properties) {
  std::string out;
  for (const auto& [name, value] : properties) out += name + "=" + value + "\n";
  return out;
}
Properties Decode(const std::string& text) {
  Properties out;
  size_t start = 0;
  for (size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
    std::string line = text.substr(start, end - start);
    size_t eq = line.find('=');
    out.emplace(line.substr(0, eq), line.substr(eq + 1));
  }
  return out;
}
std::string Only(const Properties& properties, const std::string& name) {
  auto range = properties.equal_range(name);
  if (range.first == range.second || std::next(range.first) != range.second) return "<not one>";
  return range.first->second;
}

// Answers with what the handler saw: the auth context's properties in
// `message`, its peer identity property name in `payload`.
class AuthReportingService final : public EchoTest::Service {
 public:
  grpc::Status Unary(grpc::ServerContext* ctx, const EchoRequest*, EchoResponse* resp) override {
    handled_.fetch_add(1);
    std::shared_ptr<const grpc::AuthContext> context = ctx->auth_context();
    resp->set_message(Encode(PropertiesOf(*context)));
    resp->set_payload(context->IsPeerAuthenticated() ? context->GetPeerIdentityPropertyName()
                                                     : "<unauthenticated>");
    return grpc::Status::OK;
  }
  int handled() const { return handled_.load(); }

 private:
  std::atomic<int> handled_{0};
};

// Admits calls carrying "x-token: let-me-in", naming the holder in a new
// property; refuses the others with PERMISSION_DENIED. Remembers the
// properties of the last context it was given.
class TokenProcessor final : public grpc::AuthMetadataProcessor {
 public:
  grpc::Status Process(const InputMetadata& metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed, OutputMetadata*) override {
    calls_.fetch_add(1);
    {
      std::lock_guard<std::mutex> lock(mu_);
      seen_ = PropertiesOf(*context);
    }
    auto token = metadata.find("x-token");
    if (token == metadata.end() || token->second != "let-me-in") {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no valid x-token");
    }
    consumed->emplace("x-token", "let-me-in");
    context->AddProperty("token_holder", "alice");
    return grpc::Status::OK;
  }
  int calls() const { return calls_.load(); }
  Properties seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

 private:
  std::atomic<int> calls_{0};
  std::mutex mu_;
  Properties seen_;
};

class AuthTest : public ::testing::Test {
 protected:
  // Starts an in-process server on a fresh shm address, with `processor` on
  // its shm port if given, and (with `tcp_too`) on a local-credentials TCP
  // port as well.
  void StartServer(std::shared_ptr<grpc::AuthMetadataProcessor> processor = nullptr,
                   bool tcp_too = false) {
    address_ = UniqueAbstractAddress();
    grpc::ServerBuilder builder;
    std::shared_ptr<grpc::ServerCredentials> shm_creds = ServerCredentials();
    if (processor) shm_creds->SetAuthMetadataProcessor(processor);
    builder.AddListeningPort(address_, shm_creds);
    if (tcp_too) {
      auto tcp_creds = grpc::experimental::LocalServerCredentials(LOCAL_TCP);
      if (processor) tcp_creds->SetAuthMetadataProcessor(processor);
      builder.AddListeningPort("127.0.0.1:0", tcp_creds, &tcp_port_);
    }
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  ~AuthTest() override {
    if (server_) server_->Shutdown();
  }

  std::unique_ptr<EchoTest::Stub> ShmStub(const ShmOptions& options = {}) {
    return EchoTest::NewStub(grpc::CreateChannel(address_, ChannelCredentials(options)));
  }
  std::unique_ptr<EchoTest::Stub> TcpStub() {
    return EchoTest::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(tcp_port_),
                                                 grpc::experimental::LocalCredentials(LOCAL_TCP)));
  }

  static grpc::Status Call(EchoTest::Stub* stub, const std::string& token = "",
                           EchoResponse* resp_out = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!token.empty()) ctx.AddMetadata("x-token", token);
    EchoResponse resp;
    grpc::Status status = stub->Unary(&ctx, EchoRequest(), &resp);
    if (resp_out != nullptr) *resp_out = resp;
    return status;
  }

  // One call with per-call credentials from `plugin`.
  static grpc::Status CallWithCredentials(EchoTest::Stub* stub,
                                          std::unique_ptr<grpc::MetadataCredentialsPlugin> plugin) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    ctx.set_credentials(grpc::MetadataCredentialsFromPlugin(std::move(plugin)));
    EchoResponse resp;
    return stub->Unary(&ctx, EchoRequest(), &resp);
  }

  AuthReportingService service_;
  std::string address_;
  int tcp_port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(AuthTest, HandlerSeesCallersKernelCredentialsInAuthContext) {
  StartServer();
  EchoResponse resp;
  grpc::Status status = Call(ShmStub().get(), "", &resp);
  ASSERT_TRUE(status.ok()) << status.error_message();
  Properties properties = Decode(resp.message());
  EXPECT_EQ(Only(properties, "transport_security_type"), kTransportSecurityType);
  EXPECT_EQ(Only(properties, "transport_security_type"), "shm");
  EXPECT_EQ(Only(properties, "security_level"), "TSI_PRIVACY_AND_INTEGRITY");
  // The caller is this process.
  EXPECT_EQ(Only(properties, kPeerPidProperty), std::to_string(getpid()));
  EXPECT_EQ(Only(properties, kPeerUidProperty), std::to_string(getuid()));
  EXPECT_EQ(Only(properties, kPeerGidProperty), std::to_string(getgid()));
  EXPECT_EQ(resp.payload(), kPeerUidProperty);  // the peer identity
}

TEST_F(AuthTest, ProcessorRejectionFailsShmCallsAsItDoesOnTcp) {
  auto processor = std::make_shared<TokenProcessor>();
  StartServer(processor, /*tcp_too=*/true);
  grpc::Status shm = Call(ShmStub().get());
  EXPECT_EQ(shm.error_code(), grpc::StatusCode::PERMISSION_DENIED) << shm.error_message();
  EXPECT_EQ(shm.error_message(), "no valid x-token");
  EXPECT_EQ(processor->calls(), 1);
  // The processor was given the shm caller's identity to decide on.
  Properties seen = processor->seen();
  EXPECT_EQ(Only(seen, "transport_security_type"), "shm");
  EXPECT_EQ(Only(seen, kPeerUidProperty), std::to_string(getuid()));

  grpc::Status tcp = Call(TcpStub().get());
  EXPECT_EQ(tcp.error_code(), shm.error_code()) << tcp.error_message();
  EXPECT_EQ(tcp.error_message(), shm.error_message());
  EXPECT_EQ(processor->calls(), 2);
  EXPECT_EQ(service_.handled(), 0);  // no refused call reached the handler
}

TEST_F(AuthTest, ProcessorSeesEveryShmCallAndItsPropertiesReachTheHandler) {
  auto processor = std::make_shared<TokenProcessor>();
  StartServer(processor);
  auto stub = ShmStub();
  constexpr int kCalls = 3;
  for (int i = 0; i < kCalls; ++i) {
    EchoResponse resp;
    grpc::Status status = Call(stub.get(), "let-me-in", &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
    Properties properties = Decode(resp.message());
    // gRPC gives the processor the connection's context (on chttp2 too), so
    // each admitted call on this channel adds one more "token_holder".
    auto holders = properties.equal_range("token_holder");
    EXPECT_EQ(std::distance(holders.first, holders.second), i + 1);
    for (auto it = holders.first; it != holders.second; ++it) EXPECT_EQ(it->second, "alice");
    EXPECT_EQ(Only(properties, kPeerUidProperty), std::to_string(getuid()));
  }
  EXPECT_EQ(Call(stub.get(), "wrong").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(processor->calls(), kCalls + 1);
  EXPECT_EQ(service_.handled(), kCalls);
}

TEST_F(AuthTest, ClientRequiringTheServersUidConnects) {
  StartServer();
  ShmOptions options;
  options.allowed_server_uids = {getuid() + 4242, getuid()};
  grpc::Status status = Call(ShmStub(options).get());
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(AuthTest, ClientRequiringAnotherUidRefusesTheServerWithUnavailable) {
  StartServer();
  ShmOptions options;
  const uid_t required = getuid() + 4242;
  options.allowed_server_uids = {required};
  grpc::Status status = Call(ShmStub(options).get());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_NE(
      status.error_message().find("runs as uid " + std::to_string(getuid()) +
                                  ", but this channel requires uid " + std::to_string(required)),
      std::string::npos)
      << status.error_message();
  EXPECT_EQ(service_.handled(), 0);
}

// A server started by another user on the address (what squatting on a
// socket path or abstract name amounts to) is what the option guards against.
TEST_F(AuthTest, ServerRunByAnotherUserIsRefusedUnlessItsUidIsAllowed) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to start a server as another user";
  address_ = UniqueAbstractAddress();
  ServerProcess server(
      {GRPC_SHM_ECHO_SERVER, "--shm=" + address_,
       "--run-as=" + std::to_string(kNobodyUid) + ":" + std::to_string(kNogroupGid)});
  ASSERT_TRUE(server.ok()) << "echo_test_server did not start as uid " << kNobodyUid;

  ShmOptions root_only;
  root_only.allowed_server_uids = {0};
  grpc::Status refused = Call(ShmStub(root_only).get());
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  EXPECT_NE(refused.error_message().find(
                "server on 'shm:" + grpc_shm::testing::IpcAddressOf(address_) + "' runs as uid " +
                std::to_string(kNobodyUid) + ", but this channel requires uid 0"),
            std::string::npos)
      << refused.error_message();

  ShmOptions nobody;
  nobody.allowed_server_uids = {kNobodyUid};
  EchoResponse resp;
  grpc::Status admitted = Call(ShmStub(nobody).get(), "", &resp);
  ASSERT_TRUE(admitted.ok()) << admitted.error_message();
  // The server, running as nobody, saw us as root.
  EXPECT_NE(resp.peer().find("uid=0,"), std::string::npos) << resp.peer();
}

// Adds "x-token: let-me-in" to every call it is attached to.
class TokenPlugin final : public grpc::MetadataCredentialsPlugin {
 public:
  grpc::Status GetMetadata(grpc::string_ref, grpc::string_ref, const grpc::AuthContext&,
                           std::multimap<grpc::string, grpc::string>* metadata) override {
    metadata->emplace("x-token", "let-me-in");
    return grpc::Status::OK;
  }
};

// Per-call credentials (tokens) behave over shm as over gRPC's local
// credentials: the token reaches the server's processor. Dropping them
// silently would send a call without the identity its caller attached.
TEST_F(AuthTest, CallCredentialsReachTheServerAsOverLocalTcp) {
  auto processor = std::make_shared<TokenProcessor>();
  StartServer(processor, /*tcp_too=*/true);
  for (bool shm : {false, true}) {
    grpc::Status status =
        CallWithCredentials((shm ? ShmStub() : TcpStub()).get(), std::make_unique<TokenPlugin>());
    EXPECT_TRUE(status.ok()) << (shm ? "shm: " : "tcp: ") << status.error_message();
  }
  EXPECT_EQ(service_.handled(), 2);
}

// The client's side of the same: ClientContext::auth_context() names the
// server as the kernel reported it when the channel connected.
TEST_F(AuthTest, ClientCallSeesTheServersKernelCredentialsInItsAuthContext) {
  StartServer();
  auto stub = ShmStub();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  EchoResponse resp;
  grpc::Status status = stub->Unary(&ctx, EchoRequest(), &resp);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::shared_ptr<const grpc::AuthContext> context = ctx.auth_context();
  ASSERT_NE(context, nullptr);
  Properties properties = PropertiesOf(*context);
  EXPECT_EQ(Only(properties, "transport_security_type"), "shm");
  EXPECT_EQ(Only(properties, "security_level"), "TSI_PRIVACY_AND_INTEGRITY");
  // The server is this process.
  EXPECT_EQ(Only(properties, kPeerPidProperty), std::to_string(getpid()));
  EXPECT_EQ(Only(properties, kPeerUidProperty), std::to_string(getuid()));
  EXPECT_EQ(Only(properties, kPeerGidProperty), std::to_string(getgid()));
  EXPECT_TRUE(context->IsPeerAuthenticated());
  EXPECT_EQ(context->GetPeerIdentityPropertyName(), kPeerUidProperty);
}

// Adds nothing and fails, as a token fetch that failed does.
class FailingPlugin final : public grpc::MetadataCredentialsPlugin {
 public:
  grpc::Status GetMetadata(grpc::string_ref, grpc::string_ref, const grpc::AuthContext&,
                           std::multimap<grpc::string, grpc::string>*) override {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "token service down");
  }
};

// A call whose credentials fail is not sent, over shm as over local TCP.
TEST_F(AuthTest, CallWhoseCredentialsFailIsNotSentAsOverLocalTcp) {
  StartServer(nullptr, /*tcp_too=*/true);
  for (bool shm : {false, true}) {
    grpc::Status status =
        CallWithCredentials((shm ? ShmStub() : TcpStub()).get(), std::make_unique<FailingPlugin>());
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << (shm ? "shm" : "tcp");
    EXPECT_NE(status.error_message().find("token service down"), std::string::npos)
        << (shm ? "shm: " : "tcp: ") << status.error_message();
  }
  EXPECT_EQ(service_.handled(), 0);
}

}  // namespace
}  // namespace grpc_shm
