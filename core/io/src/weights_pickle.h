/* Private to the restricted pickle reader: weights_pickle.c runs the pickle (a small stack machine
 * over values of the kinds below), weights_pickle_dict.c turns the resulting state_dict into
 * tensors. */
#ifndef VT_WEIGHTS_PICKLE_H
#define VT_WEIGHTS_PICKLE_H

#include "weights_internal.h"

typedef enum pv_kind {
    PV_MARK,
    PV_NONE,
    PV_BOOL,
    PV_INT,
    PV_FLOAT,
    PV_STR,
    PV_TUPLE,
    PV_LIST,
    PV_DICT,
    PV_GLOBAL,
    PV_STORAGE,
    PV_TENSOR
} pv_kind;

typedef enum ps_dtype {
    PS_FLOAT,
    PS_DOUBLE,
    PS_HALF,
    PS_BFLOAT16,
    PS_LONG,
    PS_INT,
    PS_SHORT,
    PS_CHAR,
    PS_BYTE,
    PS_BOOL
} ps_dtype;

/* The storage classes torch.save() names (torch.FloatStorage...): element type and size. */
typedef struct ps_storage_type {
    const char *name;
    ps_dtype dt;
    unsigned size;
} ps_storage_type;
#define VT_PICKLE_N_STORAGES 10
extern const ps_storage_type vt_pickle_storage_types[VT_PICKLE_N_STORAGES];

#define PT_MAX_DIMS 8

typedef struct pv {
    pv_kind kind;
    struct pv *next_alloc; /* every value is on one list, freed at the end (no recursion) */
    int64_t i;             /* INT, BOOL; STORAGE: numel; TENSOR: storage offset */
    double f;
    char *s; /* STR (NUL-terminated copy); STORAGE: key */
    size_t slen;
    struct pv **items; /* TUPLE, LIST; DICT: key, value, key, value... */
    size_t n, cap;
    int global; /* GLOBAL: pg_id; STORAGE/GLOBAL storage: ps_dtype in sdt */
    int sdt;
    struct pv *storage; /* TENSOR */
    int ndim;
    int64_t *size, *stride; /* TENSOR only (one allocation), so that other values stay small */
} pv;

typedef struct pk {
    const unsigned char *p, *end, *start;
    const char *label;
    pv *all;
    size_t nvalues;
    pv **stack;
    size_t sp, scap;
    pv **memo;
    size_t memo_cap, memo_next;
    pv mark;
    uint64_t out_bytes, max_out_bytes; /* bytes materialised so far, and the cap */
} pk;

/* Runs the pickle k->p .. k->end; *result is the value STOP returned. Values stay owned by k. */
vt_status vt_pickle_run(pk *k, pv **result);
/* Frees every value k made, its stack and memo. */
void vt_pickle_free(pk *k);

#endif
