/* Restricted pickle reader for torch.save() state_dicts: a small stack machine that knows only
 * the opcodes and globals a state_dict uses and refuses everything else by name. */
#include "weights_pickle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum pg_id { PG_ORDERED_DICT, PG_REBUILD_TENSOR_V2, PG_REBUILD_PARAMETER, PG_STORAGE } pg_id;

const ps_storage_type vt_pickle_storage_types[VT_PICKLE_N_STORAGES] = {
    {"FloatStorage", PS_FLOAT, 4},       {"DoubleStorage", PS_DOUBLE, 8}, {"HalfStorage", PS_HALF, 2},
    {"BFloat16Storage", PS_BFLOAT16, 2}, {"LongStorage", PS_LONG, 8},     {"IntStorage", PS_INT, 4},
    {"ShortStorage", PS_SHORT, 2},       {"CharStorage", PS_CHAR, 1},     {"ByteStorage", PS_BYTE, 1},
    {"BoolStorage", PS_BOOL, 1},
};

static vt_status perr(pk *k, vt_status s, const char *what) {
    return vt_error(s, "%s: pickle byte %zu: %s", k->label, (size_t)(k->p - k->start), what);
}

static pv *pv_new(pk *k, pv_kind kind) {
    if (k->nvalues >= VT_PICKLE_MAX_VALUES) return NULL;
    pv *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->kind = kind;
    v->next_alloc = k->all;
    k->all = v;
    k->nvalues++;
    return v;
}

/* Why pv_new gave NULL: the value limit (a hostile pickle), or memory. */
static vt_status pv_fail(pk *k) {
    if (k->nvalues >= VT_PICKLE_MAX_VALUES) {
        char what[96];
        snprintf(what, sizeof what, "over %u values: more than any state_dict holds", VT_PICKLE_MAX_VALUES);
        return perr(k, VT_ERR_FORMAT, what);
    }
    return perr(k, VT_ERR_OOM, "out of memory");
}

void vt_pickle_free(pk *k) {
    for (pv *v = k->all; v;) {
        pv *next = v->next_alloc;
        free(v->s);
        free(v->items);
        free(v->size);
        free(v);
        v = next;
    }
    free(k->stack);
    free(k->memo);
}

static vt_status push(pk *k, pv *v) {
    if (!v) return pv_fail(k);
    if (k->sp == k->scap) {
        if (k->scap >= VT_PICKLE_MAX_STACK) return perr(k, VT_ERR_FORMAT, "stack is over its size limit");
        size_t cap = k->scap ? k->scap * 2 : 64;
        pv **s = realloc(k->stack, cap * sizeof *s);
        if (!s) return perr(k, VT_ERR_OOM, "out of memory growing the stack");
        k->stack = s;
        k->scap = cap;
    }
    k->stack[k->sp++] = v;
    return VT_OK;
}

static vt_status pop(pk *k, pv **out) {
    if (k->sp == 0 || k->stack[k->sp - 1]->kind == PV_MARK) return perr(k, VT_ERR_FORMAT, "stack underflow");
    *out = k->stack[--k->sp];
    return VT_OK;
}

static vt_status top(pk *k, pv **out) {
    if (k->sp == 0 || k->stack[k->sp - 1]->kind == PV_MARK) return perr(k, VT_ERR_FORMAT, "stack underflow");
    *out = k->stack[k->sp - 1];
    return VT_OK;
}

/* Index of the topmost mark; the values above it are stack[m+1 .. sp-1]. */
static vt_status find_mark(pk *k, size_t *m) {
    for (size_t i = k->sp; i-- > 0;)
        if (k->stack[i]->kind == PV_MARK) {
            *m = i;
            return VT_OK;
        }
    return perr(k, VT_ERR_FORMAT, "no MARK on the stack");
}

static vt_status append_items(pk *k, pv *seq, pv **src, size_t n) {
    if (n == 0) return VT_OK;
    if (seq->n + n > seq->cap) {
        size_t cap = seq->cap ? seq->cap : 4;
        while (cap < seq->n + n) cap *= 2;
        pv **it = realloc(seq->items, cap * sizeof *it);
        if (!it) return perr(k, VT_ERR_OOM, "out of memory growing a container");
        seq->items = it;
        seq->cap = cap;
    }
    memcpy(seq->items + seq->n, src, n * sizeof *src);
    seq->n += n;
    return VT_OK;
}

static vt_status need(pk *k, size_t n) {
    if ((size_t)(k->end - k->p) < n) return perr(k, VT_ERR_FORMAT, "truncated (argument runs past the end)");
    return VT_OK;
}

static vt_status push_str(pk *k, size_t len) {
    VT_TRY(need(k, len));
    pv *v = pv_new(k, PV_STR);
    if (!v) return pv_fail(k);
    v->s = malloc(len + 1);
    if (!v->s) return perr(k, VT_ERR_OOM, "out of memory for a string");
    memcpy(v->s, k->p, len);
    v->s[len] = 0;
    v->slen = len;
    k->p += len;
    return push(k, v);
}

static vt_status push_int(pk *k, int64_t x) {
    pv *v = pv_new(k, PV_INT);
    if (v) v->i = x;
    return push(k, v);
}

/* Allowed globals only; the refusal names the global so users see what the file tried to call. */
static vt_status push_global(pk *k, const char *mod, size_t ml, const char *name, size_t nl) {
    char full[300];
    snprintf(full, sizeof full, "%.*s.%.*s", (int)(ml > 128 ? 128 : ml), mod, (int)(nl > 128 ? 128 : nl), name);
    pv *v = pv_new(k, PV_GLOBAL);
    if (!v) return pv_fail(k);
    if (strcmp(full, "collections.OrderedDict") == 0) {
        v->global = PG_ORDERED_DICT;
    } else if (strcmp(full, "torch._utils._rebuild_tensor_v2") == 0) {
        v->global = PG_REBUILD_TENSOR_V2;
    } else if (strcmp(full, "torch._utils._rebuild_parameter") == 0) {
        v->global = PG_REBUILD_PARAMETER;
    } else if (strncmp(full, "torch.", 6) == 0 && strlen(full) > 13 &&
               strcmp(full + strlen(full) - 7, "Storage") == 0) {
        size_t i = 0, ns = sizeof vt_pickle_storage_types / sizeof vt_pickle_storage_types[0];
        while (i < ns && strcmp(full + 6, vt_pickle_storage_types[i].name) != 0) i++;
        if (i == ns)
            return vt_error(VT_ERR_DTYPE,
                            "%s: pickle: storage type '%s' is not supported (float, double, half, bfloat16, "
                            "long, int, short, char, byte and bool storages are)",
                            k->label, full);
        v->global = PG_STORAGE;
        v->sdt = (int)i;
    } else {
        return vt_error(VT_ERR_FORMAT,
                        "%s: pickle global '%s' is refused: the restricted reader only allows "
                        "collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter "
                        "and torch.*Storage (the file may be malicious or not a state_dict)",
                        k->label, full);
    }
    return push(k, v);
}

static bool as_int(const pv *v, int64_t *x) {
    if (v->kind != PV_INT && v->kind != PV_BOOL) return false;
    *x = v->i;
    return true;
}

static vt_status op_reduce(pk *k) {
    pv *args = NULL, *fn = NULL;
    VT_TRY(pop(k, &args));
    VT_TRY(pop(k, &fn));
    if (fn->kind != PV_GLOBAL || args->kind != PV_TUPLE)
        return perr(k, VT_ERR_FORMAT, "REDUCE needs a global and an argument tuple");
    if (fn->global == PG_ORDERED_DICT) {
        if (args->n != 0) return perr(k, VT_ERR_FORMAT, "OrderedDict(...) with arguments is not supported");
        return push(k, pv_new(k, PV_DICT));
    }
    if (fn->global == PG_REBUILD_PARAMETER) {
        if (args->n < 1 || args->items[0]->kind != PV_TENSOR)
            return perr(k, VT_ERR_FORMAT, "_rebuild_parameter needs a tensor");
        return push(k, args->items[0]);
    }
    if (fn->global != PG_REBUILD_TENSOR_V2) return perr(k, VT_ERR_FORMAT, "a storage type cannot be called");
    if (args->n < 4 || args->items[0]->kind != PV_STORAGE || args->items[2]->kind != PV_TUPLE ||
        args->items[3]->kind != PV_TUPLE)
        return perr(k, VT_ERR_FORMAT, "_rebuild_tensor_v2 needs (storage, offset, size, stride, ...)");
    pv *t = pv_new(k, PV_TENSOR);
    if (!t) return pv_fail(k);
    pv *size = args->items[2], *stride = args->items[3];
    if (!as_int(args->items[1], &t->i) || t->i < 0)
        return perr(k, VT_ERR_FORMAT, "tensor storage offset is not a non-negative int");
    if (size->n != stride->n || size->n > PT_MAX_DIMS)
        return perr(k, VT_ERR_FORMAT, "tensor size and stride differ in length or have over 8 dims");
    t->storage = args->items[0];
    t->ndim = (int)size->n;
    t->size = calloc(2 * PT_MAX_DIMS, sizeof *t->size);
    if (!t->size) return perr(k, VT_ERR_OOM, "out of memory for a tensor's size and stride");
    t->stride = t->size + PT_MAX_DIMS;
    for (int d = 0; d < t->ndim; d++) {
        if (!as_int(size->items[d], &t->size[d]) || !as_int(stride->items[d], &t->stride[d]) || t->size[d] < 0 ||
            t->stride[d] < 0)
            return perr(k, VT_ERR_FORMAT, "tensor size/stride entries must be non-negative ints");
    }
    return push(k, t);
}

static vt_status op_persid(pk *k) {
    pv *pid = NULL;
    VT_TRY(pop(k, &pid));
    if (pid->kind != PV_TUPLE || pid->n != 5 || pid->items[0]->kind != PV_STR ||
        strcmp(pid->items[0]->s, "storage") != 0 || pid->items[1]->kind != PV_GLOBAL ||
        pid->items[1]->global != PG_STORAGE || pid->items[2]->kind != PV_STR || pid->items[3]->kind != PV_STR ||
        pid->items[4]->kind != PV_INT || pid->items[4]->i < 0)
        return perr(k, VT_ERR_FORMAT, "persistent id is not ('storage', torch.*Storage, key, location, numel)");
    pv *s = pv_new(k, PV_STORAGE);
    if (!s) return pv_fail(k);
    s->sdt = pid->items[1]->sdt;
    s->i = pid->items[4]->i;
    size_t len = pid->items[2]->slen;
    s->s = malloc(len + 1);
    if (!s->s) return perr(k, VT_ERR_OOM, "out of memory");
    memcpy(s->s, pid->items[2]->s, len + 1);
    s->slen = len;
    return push(k, s);
}

static vt_status memo_put(pk *k, uint64_t idx) {
    pv *v = NULL;
    VT_TRY(top(k, &v));
    if (idx >= VT_PICKLE_MAX_MEMO) return perr(k, VT_ERR_FORMAT, "memo index is over the limit");
    if (idx >= k->memo_cap) {
        size_t cap = k->memo_cap ? k->memo_cap : 64;
        while (cap <= idx) cap *= 2;
        pv **m = realloc(k->memo, cap * sizeof *m);
        if (!m) return perr(k, VT_ERR_OOM, "out of memory growing the memo");
        memset(m + k->memo_cap, 0, (cap - k->memo_cap) * sizeof *m);
        k->memo = m;
        k->memo_cap = cap;
    }
    k->memo[idx] = v;
    if (idx >= k->memo_next) k->memo_next = (size_t)idx + 1;
    return VT_OK;
}

static vt_status memo_get(pk *k, uint64_t idx) {
    if (idx >= k->memo_cap || !k->memo[idx]) return perr(k, VT_ERR_FORMAT, "memo get of an unset index");
    return push(k, k->memo[idx]);
}

static vt_status op_tuple_n(pk *k, size_t n) {
    if (k->sp < n) return perr(k, VT_ERR_FORMAT, "stack underflow");
    for (size_t i = k->sp - n; i < k->sp; i++)
        if (k->stack[i]->kind == PV_MARK) return perr(k, VT_ERR_FORMAT, "stack underflow");
    pv *t = pv_new(k, PV_TUPLE);
    if (!t) return pv_fail(k);
    VT_TRY(append_items(k, t, k->stack + k->sp - n, n));
    k->sp -= n;
    return push(k, t);
}

vt_status vt_pickle_run(pk *k, pv **result) {
    k->mark.kind = PV_MARK;
    while (k->p < k->end) {
        unsigned char op = *k->p++;
        pv *a = NULL, *b = NULL, *c = NULL;
        size_t m = 0;
        switch (op) {
        case 0x80: /* PROTO */
            VT_TRY(need(k, 1));
            if (*k->p > 5) return perr(k, VT_ERR_FORMAT, "pickle protocol is newer than 5");
            k->p++;
            break;
        case 0x95: /* FRAME: framing is only a read-ahead hint */
            VT_TRY(need(k, 8));
            k->p += 8;
            break;
        case '.': /* STOP */ VT_TRY(pop(k, result)); return VT_OK;
        case '(': /* MARK */ VT_TRY(push(k, &k->mark)); break;
        case '}': VT_TRY(push(k, pv_new(k, PV_DICT))); break;
        case ']': VT_TRY(push(k, pv_new(k, PV_LIST))); break;
        case ')': VT_TRY(push(k, pv_new(k, PV_TUPLE))); break;
        case 'N': VT_TRY(push(k, pv_new(k, PV_NONE))); break;
        case 0x88: /* NEWTRUE */
        case 0x89: /* NEWFALSE */
            a = pv_new(k, PV_BOOL);
            if (a) a->i = op == 0x88;
            VT_TRY(push(k, a));
            break;
        case 'X': /* BINUNICODE */
            VT_TRY(need(k, 4));
            m = vt_rd32(k->p);
            k->p += 4;
            VT_TRY(push_str(k, m));
            break;
        case 0x8c: /* SHORT_BINUNICODE */
            VT_TRY(need(k, 1));
            m = *k->p++;
            VT_TRY(push_str(k, m));
            break;
        case 0x8d: { /* BINUNICODE8 */
            VT_TRY(need(k, 8));
            uint64_t len = vt_rd64(k->p);
            k->p += 8;
            if (len > (uint64_t)(k->end - k->p)) return perr(k, VT_ERR_FORMAT, "truncated (string runs past the end)");
            VT_TRY(push_str(k, (size_t)len));
            break;
        }
        case 'J': /* BININT */
            VT_TRY(need(k, 4));
            VT_TRY(push_int(k, (int32_t)vt_rd32(k->p)));
            k->p += 4;
            break;
        case 'K': /* BININT1 */
            VT_TRY(need(k, 1));
            VT_TRY(push_int(k, *k->p));
            k->p += 1;
            break;
        case 'M': /* BININT2 */
            VT_TRY(need(k, 2));
            VT_TRY(push_int(k, vt_rd16(k->p)));
            k->p += 2;
            break;
        case 0x8a: { /* LONG1: little-endian two's complement */
            VT_TRY(need(k, 1));
            size_t len = *k->p++;
            if (len > 8) return perr(k, VT_ERR_FORMAT, "LONG1 integer wider than 64 bits");
            VT_TRY(need(k, len));
            uint64_t u = 0;
            for (size_t i = 0; i < len; i++) u |= (uint64_t)k->p[i] << (8 * i);
            if (len > 0 && len < 8 && (k->p[len - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * len);
            k->p += len;
            VT_TRY(push_int(k, (int64_t)u));
            break;
        }
        case 'G': { /* BINFLOAT: big-endian double */
            VT_TRY(need(k, 8));
            uint64_t u = 0;
            for (int i = 0; i < 8; i++) u = (u << 8) | k->p[i];
            k->p += 8;
            a = pv_new(k, PV_FLOAT);
            if (a) memcpy(&a->f, &u, 8);
            VT_TRY(push(k, a));
            break;
        }
        case 't': /* TUPLE */
            VT_TRY(find_mark(k, &m));
            VT_TRY(op_tuple_n(k, k->sp - m - 1));
            /* drop the mark under the new tuple */
            k->stack[m] = k->stack[k->sp - 1];
            k->sp = m + 1;
            break;
        case 0x85: VT_TRY(op_tuple_n(k, 1)); break;
        case 0x86: VT_TRY(op_tuple_n(k, 2)); break;
        case 0x87: VT_TRY(op_tuple_n(k, 3)); break;
        case 'l': /* LIST */
        case 'd': /* DICT */
            VT_TRY(find_mark(k, &m));
            a = pv_new(k, op == 'l' ? PV_LIST : PV_DICT);
            if (!a) return pv_fail(k);
            if (op == 'd' && (k->sp - m - 1) % 2) return perr(k, VT_ERR_FORMAT, "DICT with an odd number of items");
            VT_TRY(append_items(k, a, k->stack + m + 1, k->sp - m - 1));
            k->stack[m] = a;
            k->sp = m + 1;
            break;
        case 'c': { /* GLOBAL: "module\nname\n" */
            const unsigned char *nl1 = memchr(k->p, '\n', (size_t)(k->end - k->p));
            const unsigned char *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(k->end - nl1 - 1)) : NULL;
            if (!nl2) return perr(k, VT_ERR_FORMAT, "truncated GLOBAL");
            VT_TRY(push_global(k, (const char *)k->p, (size_t)(nl1 - k->p), (const char *)nl1 + 1,
                               (size_t)(nl2 - nl1 - 1)));
            k->p = nl2 + 1;
            break;
        }
        case 0x93: /* STACK_GLOBAL */
            VT_TRY(pop(k, &b));
            VT_TRY(pop(k, &a));
            if (a->kind != PV_STR || b->kind != PV_STR) return perr(k, VT_ERR_FORMAT, "STACK_GLOBAL needs two strings");
            VT_TRY(push_global(k, a->s, a->slen, b->s, b->slen));
            break;
        case 'R': VT_TRY(op_reduce(k)); break;
        case 'b': /* BUILD: state of an OrderedDict (_metadata) or a tensor is not needed */
            VT_TRY(pop(k, &b));
            VT_TRY(top(k, &a));
            if (a->kind != PV_DICT && a->kind != PV_TENSOR)
                return perr(k, VT_ERR_FORMAT, "BUILD on a value that is not a dict or tensor");
            break;
        case 's': /* SETITEM */
            VT_TRY(pop(k, &c));
            VT_TRY(pop(k, &b));
            VT_TRY(top(k, &a));
            if (a->kind != PV_DICT) return perr(k, VT_ERR_FORMAT, "SETITEM on a value that is not a dict");
            {
                pv *kv[2] = {b, c};
                VT_TRY(append_items(k, a, kv, 2));
            }
            break;
        case 'u': /* SETITEMS */
        case 'e': /* APPENDS */
            VT_TRY(find_mark(k, &m));
            if (m == 0) return perr(k, VT_ERR_FORMAT, "stack underflow");
            a = k->stack[m - 1];
            if (a->kind != (op == 'u' ? PV_DICT : PV_LIST))
                return perr(k, VT_ERR_FORMAT,
                            op == 'u' ? "SETITEMS on a value that is not a dict"
                                      : "APPENDS on a value that is not a list");
            if (op == 'u' && (k->sp - m - 1) % 2) return perr(k, VT_ERR_FORMAT, "SETITEMS with an odd number of items");
            VT_TRY(append_items(k, a, k->stack + m + 1, k->sp - m - 1));
            k->sp = m;
            break;
        case 'a': /* APPEND */
            VT_TRY(pop(k, &b));
            VT_TRY(top(k, &a));
            if (a->kind != PV_LIST) return perr(k, VT_ERR_FORMAT, "APPEND on a value that is not a list");
            VT_TRY(append_items(k, a, &b, 1));
            break;
        case 'q': /* BINPUT */
            VT_TRY(need(k, 1));
            VT_TRY(memo_put(k, *k->p));
            k->p += 1;
            break;
        case 'r': /* LONG_BINPUT */
            VT_TRY(need(k, 4));
            VT_TRY(memo_put(k, vt_rd32(k->p)));
            k->p += 4;
            break;
        case 0x94: /* MEMOIZE */ VT_TRY(memo_put(k, k->memo_next)); break;
        case 'h': /* BINGET */
            VT_TRY(need(k, 1));
            VT_TRY(memo_get(k, *k->p));
            k->p += 1;
            break;
        case 'j': /* LONG_BINGET */
            VT_TRY(need(k, 4));
            VT_TRY(memo_get(k, vt_rd32(k->p)));
            k->p += 4;
            break;
        case 'Q': VT_TRY(op_persid(k)); break;
        case '0': VT_TRY(pop(k, &a)); break; /* POP */
        case '1':                            /* POP_MARK */
            VT_TRY(find_mark(k, &m));
            k->sp = m;
            break;
        default: {
            char what[96];
            snprintf(what, sizeof what, "opcode 0x%02x is not supported by the restricted reader", op);
            k->p--;
            return perr(k, VT_ERR_FORMAT, what);
        }
        }
    }
    return perr(k, VT_ERR_FORMAT, "truncated: no STOP opcode");
}
