/* Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11). The same (key, counter)
 * gives the same four words on every backend; a header-only inline so kernels can mirror it. */
#ifndef VT_RNG_H
#define VT_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vt_philox_out {
    uint32_t v[4];
} vt_philox_out;

static inline uint32_t vt_mulhilo32(uint32_t a, uint32_t b, uint32_t *hi) {
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

static inline vt_philox_out vt_philox(uint32_t k0, uint32_t k1, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3) {
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = vt_mulhilo32(0xD2511F53u, c0, &hi0);
        uint32_t lo1 = vt_mulhilo32(0xCD9E8D57u, c2, &hi1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0;
        c1 = n1;
        c2 = n2;
        c3 = n3;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    vt_philox_out o = {{c0, c1, c2, c3}};
    return o;
}

/* Uniform in [0,1) with 24 bits, identical on every backend. */
static inline float vt_u32_to_unit(uint32_t w) { return (float)(w >> 8) * (1.0f / 16777216.0f); }

/* Host-side stream: a key and a running counter (used for init and shuffling). */
typedef struct vt_rng {
    uint32_t key0, key1;
    uint64_t counter; /* number of 4-word blocks consumed */
    uint32_t buf[4];
    int pos; /* next unused word in buf, 4 = empty */
} vt_rng;

void vt_rng_init(vt_rng *r, uint32_t seed, uint32_t stream);
uint32_t vt_rng_u32(vt_rng *r);
float vt_rng_uniform(vt_rng *r); /* [0,1) */
float vt_rng_uniform_range(vt_rng *r, float lo, float hi);
float vt_rng_normal(vt_rng *r);               /* Box-Muller from two uniforms */
uint32_t vt_rng_below(vt_rng *r, uint32_t n); /* unbiased in [0,n) */
/* Fisher-Yates permutation of 0..n-1. */
void vt_rng_permutation(vt_rng *r, int32_t *perm, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
