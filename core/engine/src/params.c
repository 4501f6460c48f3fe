/* The parameter store: every trainable parameter in one block, gradients in another, running
 * statistics in a third, optimizer slots beside them; initialised from Philox on the host. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vt/params.h"
#include "vt/rng.h"

typedef struct vt_param_rec {
    vt_tensor *t, *grad;
    vt_init init;
    int64_t fan_in, fan_out;
    int group;
} vt_param_rec;

typedef struct vt_state_rec {
    vt_tensor *t;
    float value;
} vt_state_rec;

#define VT_GROUPS 2

struct vt_params {
    vt_param_rec *params;
    int n_params, cap_params;
    vt_state_rec *states;
    int n_states, cap_states;
    int cur_group;
    vt_backend *be;
    vt_buffer *pblock, *gblock, *sblock, *oblock[2];
    int n_opt;
    size_t group_begin[VT_GROUPS + 1]; /* byte offsets of each group in the parameter block */
    vt_tensor flat_p[VT_GROUPS + 1], flat_g[VT_GROUPS + 1], flat_o[2][VT_GROUPS + 1];
    int allocated;
};

static size_t align_up(size_t x) { return (x + VT_ALIGN - 1) & ~(size_t)(VT_ALIGN - 1); }

vt_params *vt_params_new(void) { return calloc(1, sizeof(vt_params)); }

void vt_params_free(vt_params *m) {
    if (!m) return;
    for (int i = 0; i < m->n_params; i++) {
        free(m->params[i].t);
        free(m->params[i].grad);
    }
    for (int i = 0; i < m->n_states; i++) free(m->states[i].t);
    free(m->params);
    free(m->states);
    vt_backend_buffer_free(m->pblock);
    vt_backend_buffer_free(m->gblock);
    vt_backend_buffer_free(m->sblock);
    for (int i = 0; i < 2; i++) vt_backend_buffer_free(m->oblock[i]);
    free(m);
}

static vt_tensor *find_named(vt_tensor *t, const char *name, int ndim, const int64_t *shape) {
    if (strcmp(t->name, name) != 0) return NULL;
    vt_tensor want;
    vt_tensor_init(&want, name, VT_F32, ndim, shape);
    if (!vt_tensor_same_shape(t, &want)) {
        char a[64], b[64];
        vt_error(VT_ERR_SHAPE, "parameter %s exists as %s, asked again as %s", name, vt_tensor_describe(t, a, sizeof a),
                 vt_tensor_describe(&want, b, sizeof b));
        return (vt_tensor *)(uintptr_t)1; /* sentinel: found but mismatched */
    }
    return t;
}

vt_tensor *vt_params_param(vt_params *m, const char *name, int ndim, const int64_t *shape, vt_init init, int64_t fan_in,
                           int64_t fan_out) {
    for (int i = 0; i < m->n_params; i++) {
        vt_tensor *t = find_named(m->params[i].t, name, ndim, shape);
        if (t == (vt_tensor *)(uintptr_t)1) return NULL;
        if (t) return t;
    }
    if (m->allocated) {
        vt_error(VT_ERR_INVALID_ARG, "parameter %s is new, but the model's memory is already placed", name);
        return NULL;
    }
    if (m->n_params == m->cap_params) {
        int cap = m->cap_params ? m->cap_params * 2 : 64;
        vt_param_rec *p = realloc(m->params, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        m->params = p;
        m->cap_params = cap;
    }
    vt_param_rec *r = &m->params[m->n_params];
    memset(r, 0, sizeof *r);
    r->t = calloc(1, sizeof(vt_tensor));
    r->grad = calloc(1, sizeof(vt_tensor));
    if (!r->t || !r->grad) {
        free(r->t);
        free(r->grad);
        vt_error(VT_ERR_OOM, "out of host memory");
        return NULL;
    }
    vt_tensor_init(r->t, name, VT_F32, ndim, shape);
    r->t->flags = VT_TENSOR_PARAM;
    char gname[80];
    snprintf(gname, sizeof gname, "%s.grad", name);
    vt_tensor_init(r->grad, gname, VT_F32, ndim, shape);
    r->grad->flags = VT_TENSOR_GRAD;
    r->init = init;
    r->fan_in = fan_in;
    r->fan_out = fan_out;
    r->group = m->cur_group;
    m->n_params++;
    return r->t;
}

vt_tensor *vt_params_state(vt_params *m, const char *name, int ndim, const int64_t *shape, float value) {
    for (int i = 0; i < m->n_states; i++) {
        vt_tensor *t = find_named(m->states[i].t, name, ndim, shape);
        if (t == (vt_tensor *)(uintptr_t)1) return NULL;
        if (t) return t;
    }
    if (m->allocated) {
        vt_error(VT_ERR_INVALID_ARG, "state %s is new, but the model's memory is already placed", name);
        return NULL;
    }
    if (m->n_states == m->cap_states) {
        int cap = m->cap_states ? m->cap_states * 2 : 64;
        vt_state_rec *p = realloc(m->states, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        m->states = p;
        m->cap_states = cap;
    }
    vt_state_rec *r = &m->states[m->n_states];
    r->t = calloc(1, sizeof(vt_tensor));
    if (!r->t) return NULL;
    vt_tensor_init(r->t, name, VT_F32, ndim, shape);
    r->t->flags = VT_TENSOR_STATE;
    r->value = value;
    m->n_states++;
    return r->t;
}

void vt_params_set_group(vt_params *m, int group) {
    m->cur_group = group < 0 ? 0 : group >= VT_GROUPS ? VT_GROUPS - 1 : group;
}

/* One axis of the bilinear upsampling kernel, in double as get_upsampling_weight computes it in NumPy. */
static double bilinear_tap(int64_t size, int64_t i) {
    int64_t factor = (size + 1) / 2;
    double center = size % 2 == 1 ? (double)factor - 1.0 : (double)factor - 0.5;
    return 1.0 - fabs((double)i - center) / (double)factor;
}

/* VT_INIT_BILINEAR on a [C,K,R,S] weight (any other shape: zeros). */
static void bilinear_values(const vt_tensor *t, float *v, int64_t n) {
    for (int64_t i = 0; i < n; i++) v[i] = 0.0f;
    if (t->ndim != 4) return;
    int64_t C = t->shape[0], K = t->shape[1], R = t->shape[2], S = t->shape[3];
    for (int64_t c = 0; c < C && c < K; c++)
        for (int64_t r = 0; r < R; r++)
            for (int64_t s = 0; s < S; s++)
                v[((c * K + c) * R + r) * S + s] = (float)(bilinear_tap(R, r) * bilinear_tap(S, s));
}

static void init_values(const vt_param_rec *r, float *v, int64_t n, vt_rng *rng) {
    switch (r->init) {
    case VT_INIT_ZEROS:
        for (int64_t i = 0; i < n; i++) v[i] = 0.0f;
        break;
    case VT_INIT_ONES:
        for (int64_t i = 0; i < n; i++) v[i] = 1.0f;
        break;
    case VT_INIT_UNIFORM_FAN_IN: {
        float b = r->fan_in > 0 ? 1.0f / sqrtf((float)r->fan_in) : 0.0f;
        for (int64_t i = 0; i < n; i++) v[i] = vt_rng_uniform_range(rng, -b, b);
        break;
    }
    case VT_INIT_KAIMING_NORMAL_FAN_OUT: {
        float sd = r->fan_out > 0 ? sqrtf(2.0f / (float)r->fan_out) : 0.0f;
        for (int64_t i = 0; i < n; i++) v[i] = sd * vt_rng_normal(rng);
        break;
    }
    case VT_INIT_LECUN_NORMAL: {
        float sd = r->fan_in > 0 ? sqrtf(1.0f / (float)r->fan_in) : 0.0f;
        for (int64_t i = 0; i < n; i++) v[i] = sd * vt_rng_normal(rng);
        break;
    }
    case VT_INIT_BILINEAR: bilinear_values(r->t, v, n); break;
    }
}

static void flat_view(vt_tensor *t, const char *name, vt_buffer *buf, size_t begin, size_t end) {
    int64_t n = (int64_t)((end - begin) / sizeof(float));
    vt_tensor_init(t, name, VT_F32, 1, &n);
    t->buf = buf;
    t->offset = begin;
    t->flags = VT_TENSOR_VIEW;
}

vt_status vt_params_alloc(vt_params *m, vt_backend *be, uint32_t seed) {
    if (m->allocated) return vt_error(VT_ERR_INVALID_ARG, "model memory is already placed");
    m->be = be;
    size_t off = 0;
    for (int g = 0; g < VT_GROUPS; g++) {
        off = align_up(off);
        m->group_begin[g] = off;
        for (int i = 0; i < m->n_params; i++) {
            if (m->params[i].group != g) continue;
            m->params[i].t->offset = off;
            m->params[i].grad->offset = off;
            off = align_up(off + vt_tensor_nbytes(m->params[i].t));
        }
    }
    m->group_begin[VT_GROUPS] = off;
    size_t pbytes = off ? off : VT_ALIGN;
    VT_TRY(vt_backend_buffer_alloc(be, pbytes, &m->pblock));
    VT_TRY(vt_backend_buffer_alloc(be, pbytes, &m->gblock));
    size_t soff = 0;
    for (int i = 0; i < m->n_states; i++) {
        m->states[i].t->offset = soff;
        soff = align_up(soff + vt_tensor_nbytes(m->states[i].t));
    }
    VT_TRY(vt_backend_buffer_alloc(be, soff ? soff : VT_ALIGN, &m->sblock));
    for (int g = 0; g <= VT_GROUPS; g++) {
        size_t b = g < VT_GROUPS ? m->group_begin[g] : 0, e = g < VT_GROUPS ? m->group_begin[g + 1] : off;
        flat_view(&m->flat_p[g], "params", m->pblock, b, e);
        flat_view(&m->flat_g[g], "grads", m->gblock, b, e);
    }
    /* Initial values: one Philox stream per parameter, keyed by its creation index. */
    for (int i = 0; i < m->n_params; i++) {
        vt_param_rec *r = &m->params[i];
        r->t->buf = m->pblock;
        r->grad->buf = m->gblock;
        int64_t n = vt_tensor_nelem(r->t);
        float *v = malloc((size_t)n * sizeof(float));
        if (!v) return vt_error(VT_ERR_OOM, "out of host memory initialising %s", r->t->name);
        vt_rng rng;
        vt_rng_init(&rng, seed, 0x1000u + (uint32_t)i);
        init_values(r, v, n, &rng);
        vt_status s = vt_tensor_upload(r->t, v, (size_t)n * sizeof(float));
        free(v);
        VT_TRY(s);
    }
    for (int i = 0; i < m->n_states; i++) {
        vt_state_rec *r = &m->states[i];
        r->t->buf = m->sblock;
        int64_t n = vt_tensor_nelem(r->t);
        float *v = malloc((size_t)n * sizeof(float));
        if (!v) return vt_error(VT_ERR_OOM, "out of host memory");
        for (int64_t k = 0; k < n; k++) v[k] = r->value;
        vt_status s = vt_tensor_upload(r->t, v, (size_t)n * sizeof(float));
        free(v);
        VT_TRY(s);
    }
    m->allocated = 1;
    return VT_OK;
}

vt_status vt_params_alloc_optimizer(vt_params *m, int n_slots) {
    if (!m->allocated) return vt_error(VT_ERR_INVALID_ARG, "place the model before its optimizer state");
    if (n_slots < 0 || n_slots > 2) return vt_error(VT_ERR_INVALID_ARG, "optimizer slots %d not in 0..2", n_slots);
    size_t bytes = m->pblock->size;
    for (int s = m->n_opt; s < n_slots; s++) {
        VT_TRY(vt_backend_buffer_alloc(m->be, bytes, &m->oblock[s]));
        for (int g = 0; g <= VT_GROUPS; g++) {
            size_t b = g < VT_GROUPS ? m->group_begin[g] : 0;
            size_t e = g < VT_GROUPS ? m->group_begin[g + 1] : m->group_begin[VT_GROUPS];
            flat_view(&m->flat_o[s][g], s == 0 ? "opt.m" : "opt.v", m->oblock[s], b, e);
        }
    }
    if (n_slots > m->n_opt) m->n_opt = n_slots;
    return VT_OK;
}

int vt_params_n_params(const vt_params *m) { return m->n_params; }
vt_tensor *vt_params_param_at(const vt_params *m, int i) { return (i >= 0 && i < m->n_params) ? m->params[i].t : NULL; }
int vt_params_param_group(const vt_params *m, int i) { return (i >= 0 && i < m->n_params) ? m->params[i].group : -1; }
int vt_params_n_states(const vt_params *m) { return m->n_states; }
vt_tensor *vt_params_state_at(const vt_params *m, int i) { return (i >= 0 && i < m->n_states) ? m->states[i].t : NULL; }
int vt_params_n_opt_slots(const vt_params *m) { return m->n_opt; }
vt_backend *vt_params_backend(const vt_params *m) { return m->be; }

vt_tensor *vt_params_grad_of(const vt_params *m, const vt_tensor *param) {
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].t == param) return m->params[i].grad;
    return NULL;
}

int64_t vt_params_param_count(const vt_params *m) {
    int64_t n = 0;
    for (int i = 0; i < m->n_params; i++) n += vt_tensor_nelem(m->params[i].t);
    return n;
}

static int group_index(int group) { return group < 0 ? VT_GROUPS : group < VT_GROUPS ? group : VT_GROUPS; }

static vt_tensor *nonempty(vt_tensor *t) { return (t->buf && t->shape[0] > 0) ? t : NULL; }

vt_tensor *vt_params_flat_params(vt_params *m, int group) {
    return m->allocated ? nonempty(&m->flat_p[group_index(group)]) : NULL;
}
vt_tensor *vt_params_flat_grads(vt_params *m, int group) {
    return m->allocated ? nonempty(&m->flat_g[group_index(group)]) : NULL;
}
vt_tensor *vt_params_flat_opt(vt_params *m, int slot, int group) {
    if (slot < 0 || slot >= m->n_opt) return NULL;
    return nonempty(&m->flat_o[slot][group_index(group)]);
}

/* Blocks in snapshot order; the gradient block is not state (every step overwrites it). */
static int snapshot_blocks(vt_params *m, vt_buffer **blocks) {
    int n = 0;
    blocks[n++] = m->pblock;
    blocks[n++] = m->sblock;
    for (int i = 0; i < m->n_opt; i++) blocks[n++] = m->oblock[i];
    return n;
}

vt_status vt_params_snapshot_take(vt_params *m, vt_params_snapshot *s) {
    if (!m->allocated) return vt_error(VT_ERR_INVALID_ARG, "snapshot of a model that is not placed");
    vt_buffer *b[4];
    int n = snapshot_blocks(m, b);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += b[i]->size;
    if (s->bytes != total) {
        free(s->data);
        s->data = malloc(total);
        s->bytes = s->data ? total : 0;
        if (!s->data) return vt_error(VT_ERR_OOM, "cannot hold a %zu-byte model snapshot in host memory", total);
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        m->be->counters.downloads++;
        m->be->counters.bytes_down += b[i]->size;
        VT_TRY(m->be->iface->buffer_read(m->be, b[i], 0, (char *)s->data + off, b[i]->size));
        off += b[i]->size;
    }
    return VT_OK;
}

vt_status vt_params_snapshot_restore(vt_params *m, const vt_params_snapshot *s) {
    vt_buffer *b[4];
    int n = snapshot_blocks(m, b);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        if (off + b[i]->size > s->bytes) return vt_error(VT_ERR_INVALID_ARG, "snapshot does not match the model");
        m->be->counters.uploads++;
        m->be->counters.bytes_up += b[i]->size;
        VT_TRY(m->be->iface->buffer_write(m->be, b[i], 0, (const char *)s->data + off, b[i]->size));
        off += b[i]->size;
    }
    return VT_OK;
}

void vt_params_snapshot_free(vt_params_snapshot *s) {
    free(s->data);
    s->data = NULL;
    s->bytes = 0;
}
