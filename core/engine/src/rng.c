/* Host-side Philox streams: parameter init, shuffling. The same seed gives the same numbers on
 * every machine and backend, because nothing here depends on the device. */
#include "vt/rng.h"

#include <math.h>

void vt_rng_init(vt_rng *r, uint32_t seed, uint32_t stream) {
    r->key0 = seed;
    r->key1 = stream;
    r->counter = 0;
    r->pos = 4;
}

uint32_t vt_rng_u32(vt_rng *r) {
    if (r->pos >= 4) {
        vt_philox_out o = vt_philox(r->key0, r->key1, (uint32_t)r->counter, (uint32_t)(r->counter >> 32), 0x5eed, 0);
        for (int i = 0; i < 4; i++) r->buf[i] = o.v[i];
        r->counter++;
        r->pos = 0;
    }
    return r->buf[r->pos++];
}

float vt_rng_uniform(vt_rng *r) { return vt_u32_to_unit(vt_rng_u32(r)); }

float vt_rng_uniform_range(vt_rng *r, float lo, float hi) { return lo + (hi - lo) * vt_rng_uniform(r); }

float vt_rng_normal(vt_rng *r) {
    /* 1 - u keeps the log argument in (0,1]. */
    double u1 = 1.0 - (double)vt_rng_uniform(r);
    double u2 = (double)vt_rng_uniform(r);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint32_t vt_rng_below(vt_rng *r, uint32_t n) {
    if (n <= 1) return 0;
    uint32_t limit = (uint32_t)(0x100000000ull - (0x100000000ull % n));
    for (;;) {
        uint32_t w = vt_rng_u32(r);
        if (limit == 0 || w < limit) return w % n;
    }
}

void vt_rng_permutation(vt_rng *r, int32_t *perm, int64_t n) {
    for (int64_t i = 0; i < n; i++) perm[i] = (int32_t)i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)vt_rng_below(r, (uint32_t)(i + 1));
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}
