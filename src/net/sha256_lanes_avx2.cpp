// 8 lanes of SHA-256 with AVX2 (built with -mavx2; called only when the CPU has it).
#if defined(__x86_64__) && defined(__AVX2__)
#define KR_LANES 8
#define KR_KERNEL_NAME kr_sha256_blocks_x8_avx2
#include "net/sha256_lanes_kernel.inc"
#endif
