#include "plugin/transport/metadata_wire.h"

#include <grpc/support/log.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "src/core/lib/slice/slice.h"

namespace grpc_shm {
namespace transport {
namespace {

// The sink grpc_metadata_batch::Encode() feeds: typed traits arrive as
// (trait, value), unknown keys as (key, value).
class BlockSink {
 public:
  void Encode(const grpc_core::Slice& key, const grpc_core::Slice& value) {
    Add(key.as_string_view(), value.as_string_view());
  }
  template <typename Which>
  void Encode(Which, const typename Which::ValueType& value) {
    auto wire = Which::Encode(value);
    Add(Which::key(), wire.as_string_view());
  }
  // Its Encode() aborts: the value is a process-local pointer.
  void Encode(grpc_core::GrpcLbClientStatsMetadata,
              const grpc_core::GrpcLbClientStatsMetadata::ValueType&) {}
  void Encode(grpc_core::ContentTypeMetadata, grpc_core::ContentTypeMetadata::ValueType value) {
    if (value == grpc_core::ContentTypeMetadata::kInvalid) return;
    Add(grpc_core::ContentTypeMetadata::key(),
        grpc_core::ContentTypeMetadata::Encode(value).as_string_view());
  }

  std::string Finish() { return encoder_.Finish(); }

 private:
  void Add(absl::string_view key, absl::string_view value) {
    if (absl::StartsWith(key, "grpc-internal-")) return;
    encoder_.Add(key.data(), key.size(), value.data(), value.size());
  }
  ipc::MetadataEncoder encoder_;
};

bool IsLegalKey(const std::string& key) {
  if (key.empty()) return false;
  for (size_t i = 0; i < key.size(); ++i) {
    const char c = key[i];
    const bool legal = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                       c == '.' || (c == ':' && i == 0);
    if (!legal) return false;
  }
  return true;
}

// chttp2 takes any byte but these in a text value (HPACK carries no line
// structure; an HTTP/1 gateway would split the header at CR or LF). Not a
// printable-ASCII check: gRPC's own grpc-message travels unencoded here.
bool IsLegalTextValue(const std::string& value) {
  return value.find_first_of(std::string("\0\r\n", 3)) == std::string::npos;
}

}  // namespace

bool ValidateMetadataFromPeer(std::vector<ipc::MetadataEntry>* entries, std::string* why) {
  size_t kept = 0;
  for (size_t i = 0; i < entries->size(); ++i) {
    auto& entry = (*entries)[i];
    if (!IsLegalKey(entry.first)) {
      *why = "illegal metadata key";
      return false;
    }
    // grpc-message is the status text gRPC itself carries; over HTTP/2 its
    // filters percent-encode it, here it travels as the bytes it is (the
    // interop suite's special_status_message holds CR, LF and tabs).
    if (!absl::EndsWith(entry.first, "-bin") && entry.first != "grpc-message" &&
        !IsLegalTextValue(entry.second)) {
      *why = absl::StrCat("illegal character in the value of metadata '", entry.first, "'");
      return false;
    }
    if (absl::StartsWith(entry.first, "grpc-internal-")) continue;
    if (entry.first == "grpc-status") {
      // gRPC 1.51 parses this straight into the grpc_status_code enum, with
      // no range check (undefined behaviour, found by the inbound fuzzer):
      // a code it does not know is UNKNOWN, as the gRPC spec says.
      int code = -1;
      if (!absl::SimpleAtoi(entry.second, &code) || code < GRPC_STATUS_OK ||
          code > GRPC_STATUS_UNAUTHENTICATED) {
        entry.second = std::to_string(GRPC_STATUS_UNKNOWN);
      }
    }
    if (kept != i) (*entries)[kept] = std::move(entry);
    ++kept;
  }
  entries->resize(kept);
  return true;
}

std::string EncodeMetadata(const grpc_metadata_batch& batch) {
  BlockSink sink;
  batch.Encode(&sink);
  return sink.Finish();
}

namespace {

// Counts the entries of known (typed) keys; unknown keys are the
// application's.
class DefaultEntryCounter {
 public:
  size_t count() const { return count_; }
  void Encode(const grpc_core::Slice&, const grpc_core::Slice&) {}
  template <typename Which>
  void Encode(Which, const typename Which::ValueType&) {
    ++count_;
  }

 private:
  size_t count_ = 0;
};

}  // namespace

bool HasOnlyDefaultMetadata(const grpc_metadata_batch& batch) {
  DefaultEntryCounter counter;
  batch.Encode(&counter);
  return counter.count() == batch.count();
}

std::string EncodeStatusTrailers(grpc_status_code code, const std::string& message) {
  ipc::MetadataEncoder encoder;
  encoder.Add("grpc-status", absl::StrCat(static_cast<int>(code)));
  if (!message.empty()) encoder.Add("grpc-message", message);
  return encoder.Finish();
}

void AppendMetadata(const std::vector<ipc::MetadataEntry>& entries, grpc_metadata_batch* batch) {
  for (const auto& entry : entries) {
    batch->Append(entry.first, grpc_core::Slice::FromCopiedString(entry.second),
                  [&entry](absl::string_view error, const grpc_core::Slice&) {
                    gpr_log(GPR_ERROR, "grpc_shm: dropping metadata '%s' from peer: %s",
                            entry.first.c_str(), std::string(error).c_str());
                  });
  }
}

}  // namespace transport
}  // namespace grpc_shm
