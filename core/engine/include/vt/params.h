/* The parameter store: every trainable parameter, gradient, BN statistic and optimizer slot of a
 * model, in flat per-group blocks on one backend, initialised from the Philox stream. */
#ifndef VT_PARAMS_H
#define VT_PARAMS_H

#include "vt/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum vt_init {
    VT_INIT_ZEROS = 0,
    VT_INIT_ONES,
    VT_INIT_UNIFORM_FAN_IN,         /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch Linear/Conv default */
    VT_INIT_KAIMING_NORMAL_FAN_OUT, /* N(0, 2/fan_out): torchvision ResNet convolutions */
    VT_INIT_LECUN_NORMAL,           /* N(0, 1/fan_in): for SELU networks */
    /* A [C,K,R,S] transposed-convolution weight that upsamples bilinearly (the FCN paper's, as
     * fcn.berkeleyvision's and torchvision's get_upsampling_weight): w[c,c,r,s] = f(r) g(s), zero for
     * c != k, f(i) = 1 - |i - center| / factor, factor = (R+1)/2 rounded down, center = factor - 1
     * (R odd) or factor - 0.5 (R even); g likewise over S. */
    VT_INIT_BILINEAR,
} vt_init;

typedef struct vt_params vt_params;

vt_params *vt_params_new(void);
void vt_params_free(vt_params *m);
/* Get-or-create a trainable parameter. A second call with the same name returns the same tensor
 * (so a train graph and an eval graph share it) and fails if the shape differs. */
vt_tensor *vt_params_param(vt_params *m, const char *name, int ndim, const int64_t *shape, vt_init init, int64_t fan_in,
                           int64_t fan_out);
/* Get-or-create persistent non-trainable state (BN running statistics) filled with `value`. */
vt_tensor *vt_params_state(vt_params *m, const char *name, int ndim, const int64_t *shape, float value);
/* Parameters created from now on belong to group g (0 = backbone, 1 = head): groups get their own
 * learning-rate multiplier and can be frozen. Groups are laid out contiguously in group order. */
void vt_params_set_group(vt_params *m, int group);
/* Places every parameter, gradient and state tensor in three blocks on `be` and initialises them
 * from the Philox stream (seed): the same numbers on every backend. */
vt_status vt_params_alloc(vt_params *m, vt_backend *be, uint32_t seed);
/* Allocates optimizer state: n_slots flat blocks the size of the parameter block (SGD momentum: 1,
 * Adam: 2), zero-filled. */
vt_status vt_params_alloc_optimizer(vt_params *m, int n_slots);

int vt_params_n_params(const vt_params *m);
vt_tensor *vt_params_param_at(const vt_params *m, int i);
vt_tensor *vt_params_grad_of(const vt_params *m, const vt_tensor *param);
int vt_params_param_group(const vt_params *m, int i);
int64_t vt_params_param_count(const vt_params *m); /* trainable scalars */
int vt_params_n_states(const vt_params *m);
vt_tensor *vt_params_state_at(const vt_params *m, int i);
/* Flat views [elements] over one group's parameters / gradients / optimizer slot (group -1 = all). */
vt_tensor *vt_params_flat_params(vt_params *m, int group);
vt_tensor *vt_params_flat_grads(vt_params *m, int group);
vt_tensor *vt_params_flat_opt(vt_params *m, int slot, int group);
int vt_params_n_opt_slots(const vt_params *m);
vt_backend *vt_params_backend(const vt_params *m);

/* A host copy of everything a step changes (parameters, BN statistics, optimizer slots), for
 * rolling back a step that produced NaN/Inf (--nan-policy skip-step). */
typedef struct vt_params_snapshot {
    void *data;
    size_t bytes;
} vt_params_snapshot;
vt_status vt_params_snapshot_take(vt_params *m, vt_params_snapshot *s);
vt_status vt_params_snapshot_restore(vt_params *m, const vt_params_snapshot *s);
void vt_params_snapshot_free(vt_params_snapshot *s);

#ifdef __cplusplus
}
#endif
#endif
