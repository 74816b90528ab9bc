// Anonymous memory for one large message, mapped on demand: pages are only
// committed as the message is written into them, and where the kernel offers
// transparent huge pages on request (Linux, "madvise" mode), asking for them
// turns 512 page faults per 2 MiB into one. Huge pages only back 2 MiB-aligned
// ranges, so the mapping is aligned to 2 MiB.
#include <sys/mman.h>

#include <cstdint>

#include "plugin/platform/platform.h"

namespace grpc_shm {
namespace platform {
namespace {

constexpr size_t kHugePageBytes = size_t{2} << 20;

}  // namespace

void* MapLargeBuffer(size_t bytes) {
  if (bytes == 0) return nullptr;
  const size_t span = bytes + kHugePageBytes;
  void* p = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  // Keep the 2 MiB-aligned part; give back the ends (mmap rounds to pages).
  const uintptr_t start = reinterpret_cast<uintptr_t>(p);
  const uintptr_t aligned = (start + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
  if (aligned > start) munmap(p, aligned - start);
  const uintptr_t end = start + span, used_end = aligned + bytes;
  const uintptr_t tail = (used_end + 4095) & ~uintptr_t{4095};
  if (end > tail) munmap(reinterpret_cast<void*>(tail), end - tail);
#ifdef MADV_HUGEPAGE
  (void)madvise(reinterpret_cast<void*>(aligned), bytes, MADV_HUGEPAGE);  // only a hint
#endif
  return reinterpret_cast<void*>(aligned);
}

void UnmapLargeBuffer(void* p, size_t bytes) {
  if (p != nullptr) munmap(p, bytes);
}

}  // namespace platform
}  // namespace grpc_shm
