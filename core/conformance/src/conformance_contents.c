/* Contents of conformance cases: the generated values of each operand (uniform, NaN/Inf, distinct,
 * junk for outputs that must be overwritten, ...), from a seed per case so every run sees the same. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conformance_internal.h"
#include "vt/rng.h"

int64_t vt_conf_operand_nelem(const vt_conf_operand *o) {
    int64_t n = 1;
    for (int i = 0; i < o->ndim; i++) n *= o->shape[i];
    return n;
}

size_t vt_conf_operand_nbytes(const vt_conf_operand *o) {
    return (size_t)vt_conf_operand_nelem(o) * vt_dtype_size(o->dtype);
}

#define VT_CONF_GARBAGE_F32 (-31337.0f)
#define VT_CONF_GARBAGE_INT (-31337)

static vt_status materialize_operand(vt_conf_operand *o, uint32_t seed, uint32_t stream, const char *what) {
    if (!o->present || o->data) return VT_OK;
    int64_t n = vt_conf_operand_nelem(o);
    size_t es = vt_dtype_size(o->dtype);
    o->data = malloc((size_t)n * es + 1);
    if (!o->data) return vt_error(VT_ERR_OOM, "conformance %s: cannot allocate %lld elements", what, (long long)n);
    vt_rng r;
    vt_rng_init(&r, seed, stream);
    float *f = o->data;
    int32_t *i32 = o->data;
    uint8_t *u8 = o->data;
    switch (o->init) {
    case VT_CONF_INIT_GARBAGE:
        for (int64_t i = 0; i < n; i++) {
            if (o->dtype == VT_F32) f[i] = VT_CONF_GARBAGE_F32;
            else if (o->dtype == VT_U8) u8[i] = 0xA7;
            else i32[i] = VT_CONF_GARBAGE_INT;
        }
        return VT_OK;
    case VT_CONF_INIT_CONST:
        for (int64_t i = 0; i < n; i++) {
            if (o->dtype == VT_F32) f[i] = o->lo;
            else if (o->dtype == VT_U8) u8[i] = (uint8_t)o->lo;
            else i32[i] = (int32_t)o->lo;
        }
        return VT_OK;
    case VT_CONF_INIT_MARKED: {
        for (int64_t i = 0; i < n; i++) f[i] = vt_rng_uniform_range(&r, o->lo, o->hi);
        int64_t at = o->mark_at < 0 ? n + o->mark_at : o->mark_at;
        if (at < 0 || at >= n)
            return vt_error(VT_ERR_INVALID_ARG, "conformance %s: mark at %lld outside %lld elements", what,
                            (long long)o->mark_at, (long long)n);
        f[at] = o->mark;
        return VT_OK;
    }
    case VT_CONF_INIT_UNIFORM:
    case VT_CONF_INIT_NANINF:
        for (int64_t i = 0; i < n; i++) f[i] = vt_rng_uniform_range(&r, o->lo, o->hi);
        if (o->init == VT_CONF_INIT_NANINF) {
            /* fixed places (first, middle, last) plus a few random ones */
            f[0] = NAN;
            if (n > 2) f[n / 2] = INFINITY;
            if (n > 1) f[n - 1] = -INFINITY;
            for (int k = 0; k < 6 && n > 8; k++) {
                int64_t j = (int64_t)vt_rng_below(&r, (uint32_t)n);
                f[j] = k % 3 == 0 ? NAN : (k % 3 == 1 ? INFINITY : -INFINITY);
            }
        }
        return VT_OK;
    case VT_CONF_INIT_DISTINCT: {
        int32_t *perm = malloc((size_t)n * sizeof *perm);
        if (!perm) return vt_error(VT_ERR_OOM, "conformance %s: out of memory", what);
        vt_rng_permutation(&r, perm, n);
        for (int64_t i = 0; i < n; i++) f[i] = o->lo + (float)perm[i] * o->hi;
        free(perm);
        return VT_OK;
    }
    case VT_CONF_INIT_INTS: {
        uint32_t span = (uint32_t)(o->hi - o->lo) + 1;
        for (int64_t i = 0; i < n; i++) f[i] = o->lo + (float)vt_rng_below(&r, span);
        return VT_OK;
    }
    case VT_CONF_INIT_INDEX:
        for (int64_t i = 0; i < n; i++) i32[i] = (int32_t)vt_rng_below(&r, (uint32_t)o->hi);
        return VT_OK;
    case VT_CONF_INIT_LABELS: {
        const int32_t outside[4] = {255, (int32_t)o->hi, -1, INT32_MIN};
        for (int64_t i = 0; i < n; i++) {
            float u = vt_rng_uniform_range(&r, 0.0f, 1.0f);
            i32[i] = u < o->lo ? outside[vt_rng_below(&r, 4)] : (int32_t)vt_rng_below(&r, (uint32_t)o->hi);
        }
        return VT_OK;
    }
    case VT_CONF_INIT_PERM: vt_rng_permutation(&r, i32, n); return VT_OK;
    case VT_CONF_INIT_BYTES:
        for (int64_t i = 0; i < n; i++) u8[i] = (uint8_t)(vt_rng_u32(&r) >> 24);
        return VT_OK;
    case VT_CONF_INIT_DATA:
    default: return vt_error(VT_ERR_INVALID_ARG, "conformance %s: operand has no data", what);
    }
}

vt_status vt_conf_case_materialize(vt_conf_case *c) {
    for (int i = 0; i < VT_MAX_SRC; i++) VT_TRY(materialize_operand(&c->src[i], c->seed, (uint32_t)i, c->name));
    for (int i = 0; i < VT_MAX_DST; i++) VT_TRY(materialize_operand(&c->dst[i], c->seed, (uint32_t)(16 + i), c->name));
    return VT_OK;
}

void vt_conf_case_release(vt_conf_case *c) {
    for (int i = 0; i < VT_MAX_SRC + VT_MAX_DST; i++) {
        vt_conf_operand *o = i < VT_MAX_SRC ? &c->src[i] : &c->dst[i - VT_MAX_SRC];
        free(o->data);
        free(o->expected);
        o->data = o->expected = NULL;
    }
}

void vt_conf_case_copy_def(vt_conf_case *dst, const vt_conf_case *src) {
    *dst = *src;
    for (int i = 0; i < VT_MAX_SRC; i++) dst->src[i].data = dst->src[i].expected = NULL;
    for (int i = 0; i < VT_MAX_DST; i++) dst->dst[i].data = dst->dst[i].expected = NULL;
}
