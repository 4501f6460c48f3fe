/* The thin wrappers over a backend's interface that validate nodes and keep counters. Which
 * backends exist is the registry's business (backends/registry.c), not the engine's. */
#include "vt/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vt_backend_free(vt_backend *be) {
    if (be) be->iface->free(be);
}

vt_status vt_backend_buffer_alloc(vt_backend *be, size_t size, vt_buffer **out) {
    *out = NULL;
    vt_buffer *b = calloc(1, sizeof *b);
    if (!b) return vt_error(VT_ERR_OOM, "out of host memory");
    b->backend = be;
    b->size = size;
    vt_status s = be->iface->buffer_alloc(be, b);
    if (s != VT_OK) {
        free(b);
        return s;
    }
    *out = b;
    return VT_OK;
}

void vt_backend_buffer_free(vt_buffer *buf) {
    if (!buf) return;
    buf->backend->iface->buffer_free(buf->backend, buf);
    free(buf);
}

bool vt_backend_supports(vt_backend *be, const vt_node *n) { return be->iface->supports_node(be, n); }

vt_status vt_backend_compute(vt_backend *be, const vt_node *n, const vt_step_ctx *ctx) {
    VT_TRY(vt_node_validate(n));
    if (!be->iface->supports_node(be, n))
        return vt_error(VT_ERR_UNSUPPORTED, "%s: op %s (%s) is not supported on backend %s", be->info.name,
                        vt_op_name(n->op), n->label, be->info.backend);
    return be->iface->compute_node(be, n, ctx);
}

vt_status vt_backend_graph_compute(vt_backend *be, vt_graph_exec *exec, const vt_step_ctx *ctx) {
    if (be->iface->graph_compute) return be->iface->graph_compute(be, exec, ctx);
    for (int i = 0; i < exec->n_nodes; i++) {
        const vt_node *n = &exec->nodes[i];
        if (!exec->be_state) {
            /* First run: validate once; later runs trust the unchanged node list. */
            VT_TRY(vt_node_validate(n));
            if (!be->iface->supports_node(be, n))
                return vt_error(VT_ERR_UNSUPPORTED, "op %s (%s) is not supported on backend %s", vt_op_name(n->op),
                                n->label, be->info.backend);
        }
        VT_TRY(be->iface->compute_node(be, n, ctx));
    }
    if (!exec->be_state) exec->be_state = (void *)1; /* marks "validated" for the generic path */
    return VT_OK;
}

void vt_graph_exec_reset(vt_backend *be, vt_graph_exec *exec) {
    if (exec->be_state && exec->be_state_free) exec->be_state_free(be, exec->be_state);
    exec->be_state = NULL;
    exec->be_state_free = NULL;
}

vt_status vt_backend_sync(vt_backend *be) {
    be->counters.syncs++;
    return be->iface->synchronize(be);
}

/* ---- kernel-path options ------------------------------------------------------------------- */

static vt_status options_fail(const char *backend, const char *from, const char *const *known, const char *what) {
    char list[256] = "";
    size_t used = 0;
    for (int i = 0; known && known[i]; i++)
        used +=
            (size_t)snprintf(list + used, used < sizeof list ? sizeof list - used : 0, "%s%s", i ? ", " : "", known[i]);
    return vt_error(VT_ERR_INVALID_ARG, "%s options (%s): %s; known keys: %s", backend, from, what,
                    list[0] ? list : "none");
}

vt_status vt_options_parse(const char *backend, const vt_backend_opts *opts, const char *const *known,
                           vt_options *out) {
    memset(out, 0, sizeof *out);
    char env[64], from[80];
    size_t bl = strlen(backend);
    if (bl > 40) return vt_error(VT_ERR_INVALID_ARG, "backend name too long for options");
    memcpy(env, "VT_", 3);
    for (size_t i = 0; i < bl; i++)
        env[3 + i] = (char)(backend[i] >= 'a' && backend[i] <= 'z' ? backend[i] - 32 : backend[i]);
    memcpy(env + 3 + bl, "_OPTIONS", 9);
    const char *text = opts ? opts->options : NULL;
    if (text) {
        snprintf(from, sizeof from, "--backend-options");
    } else {
        text = getenv(env);
        snprintf(from, sizeof from, "%s", env);
    }
    if (!text || !*text) return VT_OK;
    const char *p = text;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        char pair[128];
        snprintf(pair, sizeof pair, "%.*s", (int)(len < 100 ? len : 100), p);
        char msg[192];
        if (!eq) {
            snprintf(msg, sizeof msg, "expected key=value, got \"%s\"", pair);
            return options_fail(backend, from, known, msg);
        }
        size_t kl = (size_t)(eq - p), vl = len - kl - 1;
        if (kl == 0 || vl == 0) {
            snprintf(msg, sizeof msg, "empty key or value in \"%s\"", pair);
            return options_fail(backend, from, known, msg);
        }
        if (kl >= sizeof out->key[0] || vl >= sizeof out->value[0]) {
            snprintf(msg, sizeof msg, "\"%s\" is too long", pair);
            return options_fail(backend, from, known, msg);
        }
        if (out->n == VT_MAX_OPTIONS) return options_fail(backend, from, known, "more than 16 options");
        memcpy(out->key[out->n], p, kl);
        out->key[out->n][kl] = 0;
        memcpy(out->value[out->n], eq + 1, vl);
        out->value[out->n][vl] = 0;
        int ok = 0;
        for (int i = 0; known && known[i]; i++) ok |= strcmp(known[i], out->key[out->n]) == 0;
        if (!ok) {
            snprintf(msg, sizeof msg, "unknown key \"%s\"", out->key[out->n]);
            return options_fail(backend, from, known, msg);
        }
        for (int i = 0; i < out->n; i++)
            if (strcmp(out->key[i], out->key[out->n]) == 0) {
                snprintf(msg, sizeof msg, "key \"%s\" given twice", out->key[i]);
                return options_fail(backend, from, known, msg);
            }
        out->n++;
        if (!end) break;
        p = end + 1;
        if (!*p) return options_fail(backend, from, known, "trailing ','");
    }
    return VT_OK;
}

const char *vt_options_get(const vt_options *o, const char *key, const char *def) {
    for (int i = 0; o && i < o->n; i++)
        if (strcmp(o->key[i], key) == 0) return o->value[i];
    return def;
}

vt_status vt_options_bool(const vt_options *o, const char *backend, const char *key, int def, int *out) {
    *out = def;
    const char *v = vt_options_get(o, key, NULL);
    if (!v) return VT_OK;
    static const char *const on[] = {"1", "on", "true", "yes"}, *const off[] = {"0", "off", "false", "no"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(v, on[i]) == 0) return *out = 1, VT_OK;
        if (strcmp(v, off[i]) == 0) return *out = 0, VT_OK;
    }
    return vt_error(VT_ERR_INVALID_ARG, "%s options: %s=%s: expected 1/0, on/off, true/false or yes/no", backend, key,
                    v);
}
