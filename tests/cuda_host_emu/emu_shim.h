#pragma once
// Host stand-ins for the CUDA built-ins used by cuda_kernels.cu: one std::thread per CUDA thread of a
// block, a barrier for __syncthreads, per-warp exchanges for the shuffles. Blocks run one at a time.
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <cuda_runtime_api.h>
#include <vector_functions.h>
#include <functional>
#include <thread>
#include <vector>
#undef __global__
#undef __forceinline__
#undef __shared__
#undef __device__
#define __device__
#define __global__
#define __forceinline__ inline
#define __shared__ static
using std::isnan;
using std::max;
using std::min;
static thread_local dim3 threadIdx(0, 0, 0);
static dim3 blockIdx(0, 0, 0), blockDim(1, 1, 1), gridDim(1, 1, 1);
static std::barrier<> *g_blk;
static std::barrier<> *g_warp[32];
static uint64_t g_slot[1024];
#define __syncthreads() g_blk->arrive_and_wait()
static inline uint32_t __umulhi(uint32_t a, uint32_t b) {
    return (uint32_t)(((uint64_t)a * b) >> 32);
}
static inline float __fmul_rn(float a, float b) {
    volatile float r = a * b;
    return r;
}
static inline float __fadd_rn(float a, float b) {
    volatile float r = a + b;
    return r;
}
static inline float __fsub_rn(float a, float b) {
    volatile float r = a - b;
    return r;
}
static inline float __fmaf_rn(float a, float b, float c) {
    return std::fmaf(a, b, c); /* one rounding, as the device's */
}
static inline float __fdiv_rn(float a, float b) {
    volatile float r = a / b;
    return r;
}
/* Integer atomics (CONFUSION): real ones, since threaded launches run the threads of a block at once. */
static inline int atomicAdd(int *p, int v) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
template <class T> static T shfl_from(T v, int src) {
    int t = threadIdx.x, w = t >> 5, lane = t & 31;
    uint64_t u = 0;
    memcpy(&u, &v, sizeof v);
    g_slot[t] = u;
    g_warp[w]->arrive_and_wait();
    T r = v;
    if (src >= 0 && src < 32)
        memcpy(&r, &g_slot[w * 32 + src], sizeof r);
    g_warp[w]->arrive_and_wait();
    (void)lane;
    return r;
}
template <class T> T __shfl_down_sync(unsigned, T v, int off) {
    return shfl_from(v, (int)(threadIdx.x & 31) + off);
}
template <class T> T __shfl_xor_sync(unsigned, T v, int off) {
    return shfl_from(v, (int)(threadIdx.x & 31) ^ off);
}
template <class T> T __shfl_sync(unsigned, T v, int src) {
    return shfl_from(v, src);
}
/* One std::thread per CUDA thread of a block; the same threads run the blocks one after another. */
static void launch(unsigned grid, unsigned block, const std::function<void()> &body) {
    gridDim.x = grid;
    blockDim.x = block;
    std::barrier<> blk(block);
    g_blk = &blk;
    for (unsigned w = 0; w < (block + 31) / 32; w++)
        g_warp[w] = new std::barrier<>(std::min(32u, block - 32 * w));
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < block; t++)
        ts.emplace_back([t, grid, &body, &blk] {
            threadIdx.x = t;
            for (unsigned b = 0; b < grid; b++) {
                blk.arrive_and_wait(); /* every thread is done with the previous block */
                if (t == 0) blockIdx.x = b;
                blk.arrive_and_wait();
                body();
            }
        });
    for (auto &th : ts)
        th.join();
    for (unsigned w = 0; w < (block + 31) / 32; w++)
        delete g_warp[w];
}
