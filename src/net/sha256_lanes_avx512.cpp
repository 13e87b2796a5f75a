// 16 lanes of SHA-256 with AVX-512F (built with -mavx512f; called only when the CPU has it).
#if defined(__x86_64__) && defined(__AVX512F__)
#define KR_LANES 16
#define KR_KERNEL_NAME kr_sha256_blocks_x16_avx512
#include "net/sha256_lanes_kernel.inc"
#endif
