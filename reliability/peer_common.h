// What the harness's processes share: the modes of the one binary, the line
// they print for each event, and the checksums that travel with messages.
#ifndef GRPC_SHM_RELIABILITY_PEER_COMMON_H_
#define GRPC_SHM_RELIABILITY_PEER_COMMON_H_

#include <cstdint>
#include <string>

namespace grpc_shm {
namespace reliability {

// Modes of grpc_shm_reliability (main.cc dispatches on argv[1]).
int RunServer(int argc, char** argv);       // peer_server.cc
int RunChaosClient(int argc, char** argv);  // chaos_client.cc
int RunProbe(int argc, char** argv);        // chaos_client.cc
int RunChaos(int argc, char** argv);        // chaos_driver.cc
int RunSoakClient(int argc, char** argv);   // soak.cc
int RunSoak(int argc, char** argv);         // soak.cc

// printf to stdout and flush, one whole line at a time even from several
// threads: the driver parses these lines.
void Say(const char* format, ...) __attribute__((format(printf, 1, 2)));

// The value of the last "--name=value" in argv, or `fallback`.
std::string Flag(int argc, char** argv, const std::string& name, const std::string& fallback);
int64_t IntFlag(int argc, char** argv, const std::string& name, int64_t fallback);

// A payload of `bytes` pseudo-random bytes (xorshift, seeded by *state).
std::string RandomPayload(size_t bytes, uint64_t* state);
uint64_t NextRandom(uint64_t* state);

// CRC-32 (IEEE) of `data`; a message carries "crc:<8 hex digits>" of its
// payload in its `message` field.
uint32_t Crc32(const std::string& data);
std::string ChecksumTag(const std::string& payload);
// True if `tag` is ChecksumTag(payload).
bool ChecksumMatches(const std::string& tag, const std::string& payload);

}  // namespace reliability
}  // namespace grpc_shm

#endif  // GRPC_SHM_RELIABILITY_PEER_COMMON_H_
