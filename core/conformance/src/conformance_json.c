/* External conformance case files (JSON, format in docs/conformance.md). The files are treated as
 * hostile: every field is type- and range-checked and errors name the file, the case and the field. */
#define _POSIX_C_SOURCE 200809L
#include "conformance_internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define VT_CASE_FILE_MAX  (64u << 20) /* bytes */
#define VT_CASE_MAX_CASES 4096
#define VT_CASE_MAX_ELEMS (1 << 24) /* per operand */

/* the parameter groups and fields, laid out as a table */
/* clang-format off */
typedef enum { G_NONE, G_MATMUL, G_CONV, G_POOL, G_BN, G_ACT, G_DROPOUT, G_CE, G_UPSAMPLE, G_PREP, G_SGD, G_ADAM, G_FILL } pgroup;
typedef enum { P_INT, P_FLOAT, P_DOUBLE, P_U32, P_I64, P_ACT, P_POOL, P_MODE, P_FLOAT4 } ptype;

typedef struct pfield {
    pgroup group;
    const char *name;
    ptype type;
    size_t off;
} pfield;

#define F(g, member, field, t) {g, #field, t, offsetof(vt_op_params, member.field)}
static const pfield vt_pfields[] = {
    F(G_MATMUL, matmul, trans_a, P_INT), F(G_MATMUL, matmul, trans_b, P_INT), F(G_MATMUL, matmul, alpha, P_FLOAT),
    F(G_MATMUL, matmul, beta, P_FLOAT), F(G_MATMUL, matmul, act, P_ACT), F(G_MATMUL, matmul, act_alpha, P_FLOAT),
    F(G_CONV, conv2d, stride_h, P_INT), F(G_CONV, conv2d, stride_w, P_INT), F(G_CONV, conv2d, pad_h, P_INT),
    F(G_CONV, conv2d, pad_w, P_INT), F(G_CONV, conv2d, act, P_ACT), F(G_CONV, conv2d, act_alpha, P_FLOAT),
    F(G_POOL, pool2d, kind, P_POOL), F(G_POOL, pool2d, kh, P_INT), F(G_POOL, pool2d, kw, P_INT),
    F(G_POOL, pool2d, stride_h, P_INT), F(G_POOL, pool2d, stride_w, P_INT), F(G_POOL, pool2d, pad_h, P_INT),
    F(G_POOL, pool2d, pad_w, P_INT),
    F(G_BN, bn, training, P_INT), F(G_BN, bn, momentum, P_FLOAT), F(G_BN, bn, eps, P_FLOAT),
    F(G_BN, bn, count, P_I64),
    F(G_ACT, act, kind, P_ACT), F(G_ACT, act, alpha, P_FLOAT),
    F(G_DROPOUT, dropout, p, P_FLOAT), F(G_DROPOUT, dropout, salt, P_U32),
    F(G_CE, ce, label_smoothing, P_FLOAT), F(G_CE, ce, scale, P_FLOAT), F(G_CE, ce, ignore, P_INT),
    F(G_UPSAMPLE, upsample, mode, P_MODE),
    F(G_PREP, prep, pad, P_INT), F(G_PREP, prep, flip, P_INT), F(G_PREP, prep, mean, P_FLOAT4),
    F(G_PREP, prep, std, P_FLOAT4), F(G_PREP, prep, salt, P_U32), F(G_PREP, prep, center, P_INT),
    F(G_SGD, sgd, lr_mult, P_FLOAT), F(G_SGD, sgd, momentum, P_FLOAT), F(G_SGD, sgd, weight_decay, P_FLOAT),
    F(G_SGD, sgd, nesterov, P_INT),
    F(G_ADAM, adam, lr_mult, P_FLOAT), F(G_ADAM, adam, beta1, P_DOUBLE), F(G_ADAM, adam, beta2, P_DOUBLE),
    F(G_ADAM, adam, eps, P_DOUBLE), F(G_ADAM, adam, weight_decay, P_DOUBLE), F(G_ADAM, adam, decoupled, P_INT),
    F(G_ADAM, adam, step_offset, P_I64),
    F(G_FILL, fill, value, P_FLOAT),
};
/* clang-format on */
#undef F

/* The parameter group of each op, from vt/op_list.h. */
#define VT_PGROUP_(e, name, n_src, n_dst, params, nmse, atol, rtol, update) [VT_OP_##e] = G_##params,
static const pgroup vt_op_groups[] = {[VT_OP_NONE] = G_NONE, VT_OP_LIST(VT_PGROUP_)};
#undef VT_PGROUP_
_Static_assert(sizeof vt_op_groups / sizeof vt_op_groups[0] == VT_OP_COUNT, "one parameter group per op");

static pgroup op_group(vt_op op) { return op > VT_OP_NONE && op < VT_OP_COUNT ? vt_op_groups[op] : G_NONE; }

/* Where we are, for messages: "file.json: case 3 (name): field". */
typedef struct loc {
    const char *file;
    int index;
    const char *name;
} loc;

#define FERR(L, ...) ferr_at(__FILE__, __LINE__, (L), __VA_ARGS__)
static vt_status ferr_at(const char *srcfile, int line, const loc *l, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

#include <stdarg.h>
static vt_status ferr_at(const char *srcfile, int line, const loc *l, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (l->index >= 0)
        return vt_set_error_at(srcfile, line, VT_ERR_FORMAT, "%s: case %d (%s): %s", l->file, l->index,
                               l->name ? l->name : "?", what);
    return vt_set_error_at(srcfile, line, VT_ERR_FORMAT, "%s: %s", l->file, what);
}

static vt_status get_int(const loc *l, const cJSON *v, const char *field, double lo, double hi, double *out) {
    if (!cJSON_IsNumber(v)) return FERR(l, "field '%s' must be a number", field);
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d)) return FERR(l, "field '%s' must be an integer, got %g", field, d);
    if (d < lo || d > hi) return FERR(l, "field '%s' = %.17g is out of range [%.17g, %.17g]", field, d, lo, hi);
    *out = d;
    return VT_OK;
}

static vt_status get_float(const loc *l, const cJSON *v, const char *field, float *out) {
    if (!cJSON_IsNumber(v)) return FERR(l, "field '%s' must be a number", field);
    double d = v->valuedouble;
    if (!isfinite(d) || fabs(d) > 3.4e38) return FERR(l, "field '%s' = %g is not a finite f32", field, d);
    *out = (float)d;
    return VT_OK;
}

static vt_status parse_params(const loc *l, vt_op op, const cJSON *obj, vt_op_params *p) {
    memset(p, 0, sizeof *p);
    /* defaults that make an omitted field sensible */
    if (op == VT_OP_MATMUL) p->matmul.alpha = 1.0f;
    if (op_group(op) == G_CONV) p->conv2d.stride_h = p->conv2d.stride_w = 1;
    if (op_group(op) == G_BN) p->bn.eps = 1e-5f, p->bn.momentum = 0.1f;
    if (op_group(op) == G_CE) p->ce.scale = 1.0f;
    if (op == VT_OP_SGD) p->sgd.lr_mult = 1.0f;
    if (op == VT_OP_ADAM) p->adam = (vt_adam_params){1.0f, 0.9, 0.999, 1e-8, 0.0, 0, 0};
    if (op == VT_OP_BATCH_PREP)
        for (int i = 0; i < 4; i++) p->prep.std[i] = 1.0f;
    if (!obj) return VT_OK;
    if (!cJSON_IsObject(obj)) return FERR(l, "'params' must be an object");
    pgroup g = op_group(op);
    const cJSON *it;
    cJSON_ArrayForEach(it, obj) {
        const pfield *f = NULL;
        for (size_t i = 0; i < sizeof vt_pfields / sizeof vt_pfields[0]; i++)
            if (vt_pfields[i].group == g && it->string && strcmp(vt_pfields[i].name, it->string) == 0)
                f = &vt_pfields[i];
        if (!f) return FERR(l, "params: unknown field '%s' for op %s", it->string ? it->string : "?", vt_op_name(op));
        char *dst = (char *)p + f->off;
        double d;
        switch (f->type) {
        case P_INT:
            VT_TRY(get_int(l, it, f->name, -1e6, 1e6, &d));
            *(int *)dst = (int)d;
            break;
        case P_U32:
            VT_TRY(get_int(l, it, f->name, 0, 4294967295.0, &d));
            *(uint32_t *)dst = (uint32_t)d;
            break;
        case P_I64:
            VT_TRY(get_int(l, it, f->name, -9007199254740992.0, 9007199254740992.0, &d));
            *(int64_t *)dst = (int64_t)d;
            break;
        case P_FLOAT: VT_TRY(get_float(l, it, f->name, (float *)dst)); break;
        case P_DOUBLE: /* Adam's betas, eps, weight decay: kept as written, as torch keeps them */
            if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || fabs(it->valuedouble) > 3.4e38)
                return FERR(l, "field '%s' must be a finite number", f->name);
            *(double *)dst = it->valuedouble;
            break;
        case P_FLOAT4: {
            if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) < 1 || cJSON_GetArraySize(it) > 4)
                return FERR(l, "params: '%s' must be an array of 1 to 4 numbers", f->name);
            int k = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, it) VT_TRY(get_float(l, e, f->name, (float *)dst + k++));
            break;
        }
        case P_ACT:
        case P_POOL:
        case P_MODE: {
            if (!cJSON_IsString(it)) return FERR(l, "params: '%s' must be a string", f->name);
            const char *s = it->valuestring;
            int v = -1;
            if (f->type == P_ACT) {
                vt_act a = vt_act_from_name(s);
                v = a < VT_ACT_COUNT ? (int)a : -1;
            } else if (f->type == P_POOL) {
                v = strcmp(s, "max") == 0 ? VT_POOL_MAX : (strcmp(s, "avg") == 0 ? VT_POOL_AVG : -1);
            } else {
                v = strcmp(s, "nearest") == 0 ? VT_UPSAMPLE_NEAREST
                                              : (strcmp(s, "bilinear") == 0 ? VT_UPSAMPLE_BILINEAR : -1);
            }
            if (v < 0) return FERR(l, "params: '%s' has unknown value '%.40s'", f->name, s);
            *(int *)dst = v; /* the enums are int-sized */
            break;
        }
        }
    }
    return VT_OK;
}

static vt_status parse_dtype(const loc *l, const cJSON *v, const char *role, vt_dtype *dt) {
    if (!v) {
        *dt = VT_F32;
        return VT_OK;
    }
    if (!cJSON_IsString(v)) return FERR(l, "%s.dtype must be a string", role);
    static const vt_dtype allowed[] = {VT_F32, VT_I32, VT_U32, VT_U8};
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (strcmp(v->valuestring, vt_dtype_name(allowed[i])) == 0) {
            *dt = allowed[i];
            return VT_OK;
        }
    return FERR(l, "%s.dtype '%.20s' is not one of f32, i32, u32, u8", role, v->valuestring);
}

/* Reads an array of numbers of the operand's dtype (f32 also takes "nan", "inf", "-inf"). */
static vt_status parse_values(const loc *l, const cJSON *arr, const char *role, const char *field,
                              const vt_conf_operand *o, void **out) {
    int64_t n = 1;
    for (int i = 0; i < o->ndim; i++) n *= o->shape[i];
    if (!cJSON_IsArray(arr)) return FERR(l, "%s.%s must be an array", role, field);
    int len = cJSON_GetArraySize(arr);
    if ((int64_t)len != n) return FERR(l, "%s.%s has %d values, the shape needs %lld", role, field, len, (long long)n);
    size_t es = vt_dtype_size(o->dtype);
    void *buf = malloc((size_t)n * es + 1);
    if (!buf) return vt_error(VT_ERR_OOM, "%s: out of memory for %s.%s", l->file, role, field);
    int64_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        double d;
        if (o->dtype == VT_F32) {
            if (cJSON_IsString(e)) {
                const char *s = e->valuestring;
                if (strcmp(s, "nan") == 0) d = NAN;
                else if (strcmp(s, "inf") == 0) d = INFINITY;
                else if (strcmp(s, "-inf") == 0) d = -INFINITY;
                else {
                    free(buf);
                    return FERR(l, "%s.%s[%lld]: string '%.20s' is not nan, inf or -inf", role, field, (long long)i, s);
                }
            } else if (cJSON_IsNumber(e) && isfinite(e->valuedouble) && fabs(e->valuedouble) <= 3.4028234663852886e38) {
                d = e->valuedouble;
            } else {
                free(buf);
                return FERR(l, "%s.%s[%lld] is not a finite f32 number", role, field, (long long)i);
            }
            ((float *)buf)[i] = (float)d;
        } else {
            double lo = o->dtype == VT_I32 ? -2147483648.0 : 0.0;
            double hi = o->dtype == VT_I32 ? 2147483647.0 : (o->dtype == VT_U8 ? 255.0 : 4294967295.0);
            char what[48];
            snprintf(what, sizeof what, "%s.%s[%lld]", role, field, (long long)i);
            vt_status st = get_int(l, e, what, lo, hi, &d);
            if (st != VT_OK) {
                free(buf);
                return st;
            }
            if (o->dtype == VT_I32) ((int32_t *)buf)[i] = (int32_t)d;
            else if (o->dtype == VT_U32) ((uint32_t *)buf)[i] = (uint32_t)d;
            else ((uint8_t *)buf)[i] = (uint8_t)d;
        }
        i++;
    }
    *out = buf;
    return VT_OK;
}

static vt_status parse_operand(const loc *l, const cJSON *v, const char *role, int is_dst, vt_conf_operand *o) {
    memset(o, 0, sizeof *o);
    if (cJSON_IsNull(v)) return VT_OK;
    if (!cJSON_IsObject(v)) return FERR(l, "%s must be an object or null", role);
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        const char *k = it->string ? it->string : "";
        if (strcmp(k, "dtype") && strcmp(k, "shape") && strcmp(k, "data") && strcmp(k, "expected"))
            return FERR(l, "%s: unknown field '%.40s'", role, k);
    }
    o->present = 1;
    VT_TRY(parse_dtype(l, cJSON_GetObjectItemCaseSensitive(v, "dtype"), role, &o->dtype));
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(v, "shape");
    if (!cJSON_IsArray(shape)) return FERR(l, "%s.shape must be an array", role);
    int nd = cJSON_GetArraySize(shape);
    if (nd < 1 || nd > VT_MAX_DIMS) return FERR(l, "%s.shape has %d dims, expected 1 to %d", role, nd, VT_MAX_DIMS);
    o->ndim = nd;
    for (int i = 0; i < VT_MAX_DIMS; i++) o->shape[i] = 1;
    int64_t n = 1;
    for (int i = 0; i < nd; i++) {
        double d;
        char what[48];
        snprintf(what, sizeof what, "%s.shape[%d]", role, i);
        VT_TRY(get_int(l, cJSON_GetArrayItem(shape, i), what, 1, VT_CASE_MAX_ELEMS, &d));
        o->shape[i] = (int64_t)d;
        n *= o->shape[i];
        if (n > VT_CASE_MAX_ELEMS) return FERR(l, "%s.shape holds more than %d elements", role, VT_CASE_MAX_ELEMS);
    }
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(v, "data");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(v, "expected");
    if (!is_dst && !data) return FERR(l, "%s needs 'data'", role);
    if (data) {
        VT_TRY(parse_values(l, data, role, "data", o, &o->data));
        o->init = VT_CONF_INIT_DATA;
    } else {
        o->init = VT_CONF_INIT_GARBAGE;
    }
    if (exp) {
        VT_TRY(parse_values(l, exp, role, "expected", o, &o->expected));
        o->is_output = 1;
    }
    if (is_dst) o->is_output = 1;
    return VT_OK;
}

static vt_status parse_tol(const loc *l, const cJSON *v, vt_conf_case *c) {
    if (!v) return VT_OK;
    if (!cJSON_IsObject(v)) return FERR(l, "'tolerance' must be an object");
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        const char *k = it->string ? it->string : "";
        double *dst = strcmp(k, "nmse") == 0     ? &c->tol.nmse
                      : strcmp(k, "atol") == 0   ? &c->tol.atol
                      : strcmp(k, "rtol") == 0   ? &c->tol.rtol
                      : strcmp(k, "update") == 0 ? &c->tol.update
                      : strcmp(k, "red") == 0    ? &c->red
                                                 : NULL;
        if (!dst) return FERR(l, "tolerance: unknown field '%.40s'", k);
        if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble < 0 || it->valuedouble > 1e12)
            return FERR(l, "tolerance.%s must be a number in [0, 1e12]", k);
        *dst = it->valuedouble;
    }
    return VT_OK;
}

static vt_status parse_ctx(const loc *l, const cJSON *v, vt_step_ctx *ctx) {
    memset(ctx, 0, sizeof *ctx);
    ctx->lr = 0.1f;
    if (!v) return VT_OK;
    if (!cJSON_IsObject(v)) return FERR(l, "'ctx' must be an object");
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        const char *k = it->string ? it->string : "";
        double d;
        if (strcmp(k, "step") == 0) {
            VT_TRY(get_int(l, it, "ctx.step", 0, 9007199254740992.0, &d));
            ctx->step = (uint64_t)d;
        } else if (strcmp(k, "seed") == 0) {
            VT_TRY(get_int(l, it, "ctx.seed", 0, 4294967295.0, &d));
            ctx->seed = (uint32_t)d;
        } else if (strcmp(k, "batch_start") == 0) {
            VT_TRY(get_int(l, it, "ctx.batch_start", 0, 2147483647.0, &d));
            ctx->batch_start = (int64_t)d;
        } else if (strcmp(k, "lr") == 0) {
            VT_TRY(get_float(l, it, "ctx.lr", &ctx->lr));
        } else {
            return FERR(l, "ctx: unknown field '%.40s'", k);
        }
    }
    return VT_OK;
}

/* Preconditions the op table does not check but a kernel relies on (indices in range). */
static vt_status check_semantics(const loc *l, vt_conf_case *c) {
    if (c->op == VT_OP_BATCHNORM && c->p.bn.training)
        for (int i = 3; i < 5; i++)
            if (!c->src[i].expected)
                return FERR(l, "src%d (running statistics, updated in place in training) needs 'expected'", i);
    if (c->op == VT_OP_BN_APPLY)
        for (int i = 1; i < 3; i++)
            if (c->dst[i].present && !c->dst[i].data)
                return FERR(l, "dst%d (running statistics, read and updated in place) needs 'data'", i);
    if ((c->op == VT_OP_SOFTMAX_CE || c->op == VT_OP_SOFTMAX_CE_BWD) && !c->p.ce.ignore) { /* ignore: any label */
        int64_t K = c->src[0].shape[1];
        const int32_t *lab = c->src[1].data;
        for (int64_t i = 0; i < vt_conf_operand_nelem(&c->src[1]); i++)
            if (lab[i] < 0 || lab[i] >= K)
                return FERR(l, "src1.data[%lld] = %d: label not in [0, %lld)", (long long)i, lab[i], (long long)K);
    }
    if (c->op == VT_OP_BATCH_PREP) {
        int64_t D = c->src[0].shape[0], B = c->dst[0].shape[0];
        const int32_t *perm = c->src[2].data;
        for (int64_t i = 0; i < D; i++)
            if (perm[i] < 0 || perm[i] >= D)
                return FERR(l, "src2.data[%lld] = %d: index not in [0, %lld)", (long long)i, perm[i], (long long)D);
        if (c->ctx.batch_start + B > D)
            return FERR(l, "ctx.batch_start %lld + batch %lld runs past the %lld samples",
                        (long long)c->ctx.batch_start, (long long)B, (long long)D);
    }
    return VT_OK;
}

static vt_status parse_case(const loc *l0, const cJSON *v, vt_conf_case *c) {
    loc l = *l0;
    memset(c, 0, sizeof *c);
    if (!cJSON_IsObject(v)) return FERR(&l, "a case must be an object");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(v, "name");
    if (!cJSON_IsString(name) || !name->valuestring[0] || strlen(name->valuestring) >= sizeof c->name)
        return FERR(&l, "'name' must be a non-empty string shorter than %zu", sizeof c->name);
    snprintf(c->name, sizeof c->name, "%s", name->valuestring);
    l.name = c->name;
    snprintf(c->origin, sizeof c->origin, "%.140s#%d", l.file, l.index);
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        const char *k = it->string ? it->string : "";
        if (strcmp(k, "name") && strcmp(k, "op") && strcmp(k, "params") && strcmp(k, "ctx") && strcmp(k, "src") &&
            strcmp(k, "dst") && strcmp(k, "tolerance") && strcmp(k, "comment"))
            return FERR(&l, "unknown field '%.40s'", k);
    }
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(v, "op");
    if (!cJSON_IsString(op)) return FERR(&l, "'op' must be a string");
    c->op = vt_op_from_name(op->valuestring);
    if (c->op == VT_OP_NONE) return FERR(&l, "op '%.40s' is unknown", op->valuestring);
    c->tol = vt_conf_op_tol(c->op);
    c->red = 1.0;
    VT_TRY(parse_params(&l, c->op, cJSON_GetObjectItemCaseSensitive(v, "params"), &c->p));
    VT_TRY(parse_ctx(&l, cJSON_GetObjectItemCaseSensitive(v, "ctx"), &c->ctx));
    VT_TRY(parse_tol(&l, cJSON_GetObjectItemCaseSensitive(v, "tolerance"), c));
    const char *lists[2] = {"src", "dst"};
    for (int k = 0; k < 2; k++) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(v, lists[k]);
        int max = k == 0 ? vt_op_n_src(c->op) : vt_op_n_dst(c->op);
        if (!arr && k == 0 && max == 0) continue;
        if (!cJSON_IsArray(arr)) return FERR(&l, "'%s' must be an array", lists[k]);
        int n = cJSON_GetArraySize(arr);
        if (n > max)
            return FERR(&l, "'%s' has %d operands, op %s takes at most %d", lists[k], n, vt_op_name(c->op), max);
        for (int i = 0; i < n; i++) {
            char role[24];
            snprintf(role, sizeof role, "%s%d", lists[k], i);
            vt_conf_operand *o = k == 0 ? &c->src[i] : &c->dst[i];
            VT_TRY(parse_operand(&l, cJSON_GetArrayItem(arr, i), role, k == 1, o));
        }
    }
    int n_expected = 0;
    for (int i = 0; i < VT_MAX_SRC; i++) n_expected += c->src[i].expected != NULL;
    for (int i = 0; i < VT_MAX_DST; i++) {
        n_expected += c->dst[i].expected != NULL;
        if (c->dst[i].present && !c->dst[i].expected) return FERR(&l, "dst%d needs 'expected'", i);
    }
    if (!n_expected) return FERR(&l, "no operand has 'expected' values");
    /* The node must validate before anything runs it. */
    vt_tensor ts[VT_MAX_SRC + VT_MAX_DST];
    vt_node node;
    memset(&node, 0, sizeof node);
    node.op = c->op;
    node.p = c->p;
    for (int i = 0; i < VT_MAX_SRC + VT_MAX_DST; i++) {
        vt_conf_operand *o = i < VT_MAX_SRC ? &c->src[i] : &c->dst[i - VT_MAX_SRC];
        if (!o->present) continue;
        vt_tensor_init(&ts[i], i < VT_MAX_SRC ? "src" : "dst", o->dtype, o->ndim, o->shape);
        if (i < VT_MAX_SRC) node.src[i] = &ts[i];
        else node.dst[i - VT_MAX_SRC] = &ts[i];
    }
    if (vt_node_validate(&node) != VT_OK) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", vt_last_error());
        return FERR(&l, "the node is invalid: %s", msg);
    }
    return check_semantics(&l, c);
}

void vt_conf_cases_free(vt_conf_case *cases, int n) {
    if (!cases) return;
    for (int i = 0; i < n; i++) vt_conf_case_release(&cases[i]);
    free(cases);
}

static vt_status read_text(const char *path, char **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return vt_error(VT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return vt_error(VT_ERR_IO, "%s: cannot seek", path);
    }
    long size = ftell(f);
    if (size < 0 || (unsigned long)size > VT_CASE_FILE_MAX) {
        fclose(f);
        return vt_error(VT_ERR_FORMAT, "%s: size %ld is not in [0, %u] bytes", path, size, VT_CASE_FILE_MAX);
    }
    rewind(f);
    char *buf = malloc((size_t)size + 1);
    if (!buf) {
        fclose(f);
        return vt_error(VT_ERR_OOM, "%s: out of memory", path);
    }
    size_t got = fread(buf, 1, (size_t)size, f);
    fclose(f);
    if (got != (size_t)size) {
        free(buf);
        return vt_error(VT_ERR_IO, "%s: short read", path);
    }
    buf[size] = 0;
    if (strlen(buf) != (size_t)size) {
        free(buf);
        return vt_error(VT_ERR_FORMAT, "%s: contains a NUL byte", path);
    }
    *out = buf;
    return VT_OK;
}

/* Appends the cases of one file to *cases. */
static vt_status load_into(const char *path, vt_conf_case **cases, int *n) {
    char *text;
    VT_TRY(read_text(path, &text));
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    loc l = {base, -1, NULL};
    cJSON *root = cJSON_ParseWithLength(text, strlen(text));
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= text ? (long)(at - text) : -1;
        free(text);
        return FERR(&l, "not valid JSON (near byte %ld)", off);
    }
    free(text);
    vt_status st = VT_OK;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "cases");
    if (!cJSON_IsObject(root)) st = FERR(&l, "the top level must be an object");
    else if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "vtrain-cases") != 0)
        st = FERR(&l, "'format' must be \"vtrain-cases\"");
    else if (!cJSON_IsNumber(ver) || ver->valuedouble != 1) st = FERR(&l, "'version' must be 1");
    else if (!cJSON_IsArray(arr)) st = FERR(&l, "'cases' must be an array");
    else if (cJSON_GetArraySize(arr) > VT_CASE_MAX_CASES || *n + cJSON_GetArraySize(arr) > VT_CASE_MAX_CASES)
        st = FERR(&l, "more than %d cases", VT_CASE_MAX_CASES);
    if (st == VT_OK) {
        const cJSON *it;
        cJSON_ArrayForEach(it, root) {
            const char *k = it->string ? it->string : "";
            if (strcmp(k, "format") && strcmp(k, "version") && strcmp(k, "cases") && strcmp(k, "generator") &&
                strcmp(k, "comment")) {
                st = FERR(&l, "unknown top-level field '%.40s'", k);
                break;
            }
        }
    }
    if (st == VT_OK) {
        int m = cJSON_GetArraySize(arr);
        vt_conf_case *grown = realloc(*cases, (size_t)(*n + m + 1) * sizeof *grown);
        if (!grown) st = vt_error(VT_ERR_OOM, "%s: out of memory", base);
        else *cases = grown;
        for (int i = 0; i < m && st == VT_OK; i++) {
            l.index = i;
            l.name = NULL;
            vt_conf_case *c = &(*cases)[*n];
            st = parse_case(&l, cJSON_GetArrayItem(arr, i), c);
            /* junk contents for outputs now, so that runs never allocate into a shared case */
            if (st == VT_OK) st = vt_conf_case_materialize(c);
            if (st == VT_OK) (*n)++;
            else vt_conf_case_release(c);
        }
    }
    cJSON_Delete(root);
    return st;
}

vt_status vt_conf_load_file(const char *path, vt_conf_case **cases, int *n) {
    *cases = NULL;
    *n = 0;
    vt_status st = load_into(path, cases, n);
    if (st != VT_OK) {
        vt_conf_cases_free(*cases, *n);
        *cases = NULL;
        *n = 0;
    }
    return st;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

vt_status vt_conf_load_dir(const char *dir, vt_conf_case **cases, int *n) {
    *cases = NULL;
    *n = 0;
    struct stat sb;
    if (stat(dir, &sb) != 0) return vt_error(VT_ERR_NOT_FOUND, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return vt_conf_load_file(dir, cases, n);
    DIR *d = opendir(dir);
    if (!d) return vt_error(VT_ERR_IO, "%s: cannot list: %s", dir, strerror(errno));
    char **names = NULL;
    int nn = 0;
    vt_status st = VT_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && st == VT_OK) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0 || e->d_name[0] == '.') continue;
        char **grown = realloc(names, (size_t)(nn + 1) * sizeof *grown);
        char *copy = grown ? malloc(len + 1) : NULL;
        if (!copy) {
            if (grown) names = grown;
            st = vt_error(VT_ERR_OOM, "%s: out of memory", dir);
            break;
        }
        memcpy(copy, e->d_name, len + 1);
        names = grown;
        names[nn++] = copy;
    }
    closedir(d);
    if (st == VT_OK && nn) qsort(names, (size_t)nn, sizeof *names, cmp_str);
    for (int i = 0; i < nn && st == VT_OK; i++) {
        size_t len = strlen(dir) + strlen(names[i]) + 2;
        char *path = malloc(len);
        if (!path) {
            st = vt_error(VT_ERR_OOM, "%s: out of memory", dir);
            break;
        }
        snprintf(path, len, "%s/%s", dir, names[i]);
        st = load_into(path, cases, n);
        free(path);
    }
    for (int i = 0; i < nn; i++) free(names[i]);
    free(names);
    if (st != VT_OK) {
        vt_conf_cases_free(*cases, *n);
        *cases = NULL;
        *n = 0;
    }
    return st;
}
