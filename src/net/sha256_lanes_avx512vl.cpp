// 8 lanes of SHA-256 in 256-bit registers with AVX-512VL (built with -mavx512f -mavx512vl;
// called only when the CPU has both): the same rotate (vprord) and three-input logic
// (vpternlogd) instructions as the 16-lane kernel at half the width, so a step costs about
// half as much. For bursts of 2-8 files, where 16 lanes would mostly hash spare data.
#if defined(__x86_64__) && defined(__AVX512VL__)
#define KR_LANES 8
#define KR_KERNEL_NAME kr_sha256_blocks_x8_avx512vl
#include "net/sha256_lanes_kernel.inc"
#endif
