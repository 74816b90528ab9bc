#include "raw_peer.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "plugin/ipc/metadata_codec.h"

namespace grpc_shm {
namespace testing {

std::unique_ptr<RawPeer> RawPeer::Connect(const std::string& ipc_address, ipc::Status* status) {
  auto peer = std::unique_ptr<RawPeer>(new RawPeer());
  *status = ipc::Connect(ipc_address, ipc::DefaultConnectionOptions(), &peer->connection_);
  if (!status->ok()) return nullptr;
  Frame settings;
  *status = peer->Read(&settings);
  if (!status->ok()) return nullptr;
  if (settings.header.type != ipc::kFrameSettings) {
    *status = ipc::Status(ipc::StatusCode::kProtocol, "first frame is not the settings frame");
    return nullptr;
  }
  peer->max_concurrent_streams_ = settings.header.aux;
  return peer;
}

namespace {

ipc::FrameHeader HeaderFor(uint8_t type, uint32_t stream_id, uint8_t flags, uint32_t aux,
                           const std::string& payload) {
  ipc::FrameHeader header{};
  header.type = type;
  header.stream_id = stream_id;
  header.flags = flags;
  header.aux = aux;
  header.payload_size = static_cast<uint32_t>(payload.size());
  return header;
}

}  // namespace

ipc::Status RawPeer::Send(uint8_t type, uint32_t stream_id, uint8_t flags, uint32_t aux,
                          const std::string& payload, std::chrono::milliseconds timeout) {
  ipc::ConstByteSpan part{reinterpret_cast<const uint8_t*>(payload.data()), payload.size()};
  return connection_->WriteFrame(HeaderFor(type, stream_id, flags, aux, payload), &part, 1,
                                 Clock::now() + timeout);
}

ipc::Status RawPeer::TrySend(uint8_t type, uint32_t stream_id, uint8_t flags, uint32_t aux,
                             const std::string& payload) {
  ipc::ConstByteSpan part{reinterpret_cast<const uint8_t*>(payload.data()), payload.size()};
  return connection_->TryWriteFrame(HeaderFor(type, stream_id, flags, aux, payload), &part, 1);
}

ipc::Status RawPeer::OpenStream(uint32_t id, const std::string& method) {
  return Send(ipc::kFrameInitialMetadata, id, 0, 0,
              MetadataBlock({{":path", method},
                             {":authority", "localhost"},
                             {"content-type", "application/grpc"},
                             {"te", "trailers"}}));
}

ipc::Status RawPeer::SendMessage(uint32_t id, const std::string& message) {
  return Send(ipc::kFrameMessage, id, 0, 0, message);
}

ipc::Status RawPeer::Read(Frame* frame, std::chrono::milliseconds timeout) {
  ipc::FrameView view;
  ipc::Status status = connection_->ReadFrame(&view, Clock::now() + timeout);
  if (!status.ok()) return status;
  frame->header = view.header;
  frame->payload.assign(view.payload_size(), '\0');
  view.CopyPayloadTo(reinterpret_cast<uint8_t*>(&frame->payload[0]));
  connection_->Consume();
  return ipc::Status::Ok();
}

ipc::Status RawPeer::ReadUntil(uint8_t type, uint32_t stream_id, Frame* frame,
                               std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return ipc::Status(ipc::StatusCode::kTimeout, "no such frame");
    ipc::Status status = Read(frame, left);
    if (!status.ok()) return status;
    if (frame->header.type == type && frame->header.stream_id == stream_id) return status;
  }
}

bool RawPeer::WaitForHangup(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Frame frame;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    ipc::Status status = Read(&frame, left);
    if (status.code() == ipc::StatusCode::kPeerClosed) return true;
    if (!status.ok()) return false;
  }
}

std::string MetadataBlock(const std::vector<std::pair<std::string, std::string>>& entries) {
  ipc::MetadataEncoder encoder;
  for (const auto& e : entries) encoder.Add(e.first, e.second);
  return encoder.Finish();
}

ProcessUsage UsageOf(pid_t pid) {
  ProcessUsage usage;
  const std::string proc = "/proc/" + std::to_string(pid);
  std::ifstream status(proc + "/status");
  for (std::string line; std::getline(status, line);) {
    std::istringstream in(line);
    std::string key;
    in >> key;
    if (key == "VmRSS:") in >> usage.rss_kib;
    if (key == "Threads:") in >> usage.threads;
  }
  if (DIR* dir = opendir((proc + "/fd").c_str())) {
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] == '.') continue;
      ++usage.descriptors;
      char target[64];
      const std::string link = proc + "/fd/" + e->d_name;
      const ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
      if (n > 0 && std::string(target, n) == "anon_inode:[eventfd]") ++usage.eventfds;
    }
    closedir(dir);
  }
  std::ifstream maps(proc + "/maps");
  for (std::string line; std::getline(maps, line);) {
    if (line.find("/memfd:") != std::string::npos) ++usage.memfd_mappings;
  }
  return usage;
}

std::string DescribeDescriptors(pid_t pid) {
  const std::string dir_name = "/proc/" + std::to_string(pid) + "/fd";
  std::string out;
  if (DIR* dir = opendir(dir_name.c_str())) {
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] == '.') continue;
      char target[256];
      const ssize_t n = readlink((dir_name + "/" + e->d_name).c_str(), target, sizeof(target) - 1);
      target[n > 0 ? n : 0] = '\0';
      out += std::string(" ") + e->d_name + "->" + target;
    }
    closedir(dir);
  }
  return out;
}

}  // namespace testing
}  // namespace grpc_shm
