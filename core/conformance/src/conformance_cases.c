/* The built-in conformance cases: odd shapes that catch indexing and tail bugs, and the shapes the
 * practice really runs (linear 3072->1024, the CNN stem, ResNet18 convolutions, global pooling). */
#include "conformance_cases.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static vt_conf_case *vt_cases;
static int vt_n_cases, vt_cap_cases;
static int vt_cases_failed;

static uint32_t name_hash(const char *s) {
    uint32_t h = 2166136261u; /* FNV-1a: a stable seed per case name */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

vt_conf_case *vt_cc_add_case(vt_op op, const char *fmt, ...) {
    if (vt_n_cases == vt_cap_cases) {
        int cap = vt_cap_cases ? vt_cap_cases * 2 : 256;
        vt_conf_case *grown = realloc(vt_cases, (size_t)cap * sizeof *grown);
        if (!grown) {
            vt_cases_failed = 1;
            return NULL;
        }
        vt_cases = grown;
        vt_cap_cases = cap;
    }
    vt_conf_case *c = &vt_cases[vt_n_cases++];
    memset(c, 0, sizeof *c);
    c->op = op;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->name, sizeof c->name, fmt, ap);
    va_end(ap);
    c->tol = vt_conf_op_tol(op);
    c->red = 1.0;
    c->seed = name_hash(c->name);
    c->ctx.seed = 20240607u;
    c->ctx.lr = 0.1f;
    c->replay = 1;
    snprintf(c->origin, sizeof c->origin, "builtin");
    return c;
}

void vt_cc_put(vt_conf_operand *o, vt_dtype dt, vt_conf_init init, float lo, float hi, int ndim, int64_t d0, int64_t d1,
               int64_t d2, int64_t d3) {
    o->present = 1;
    o->dtype = dt;
    o->init = init;
    o->lo = lo;
    o->hi = hi;
    o->ndim = ndim;
    o->shape[0] = d0;
    o->shape[1] = d1;
    o->shape[2] = d2;
    o->shape[3] = d3;
    for (int i = ndim; i < VT_MAX_DIMS; i++) o->shape[i] = 1;
}

/* Outputs the op must fully overwrite start as junk so that an unwritten element shows. */
void vt_cc_out(vt_conf_operand *o, vt_dtype dt, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    vt_cc_put(o, dt, VT_CONF_INIT_GARBAGE, 0, 0, ndim, d0, d1, d2, d3);
    o->is_output = 1;
}

const char *vt_cc_act_tag(vt_act a) { return a == VT_ACT_NONE ? "" : vt_act_name(a); }

static void build_cases(void) {
    /* MATMUL: every transpose combination on odd shapes, beta/alpha/bias/epilogue, then the real ones */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            vt_cc_matmul(5, 7, 13, ta, tb, 1, 0, 0, VT_ACT_NONE, 0, "");
            vt_cc_matmul(33, 17, 65, ta, tb, 1, 0, 1, VT_ACT_NONE, 0, "");
            vt_cc_matmul(7, 1, 5, ta, tb, 0.5f, 1, 0, VT_ACT_NONE, 0, "");
        }
    vt_cc_matmul(1, 1, 1, 0, 0, 1, 0, 0, VT_ACT_NONE, 0, "");
    vt_cc_matmul(13, 33, 7, 0, 1, 1, 0.5f, 1, VT_ACT_NONE, 0, "");
    vt_cc_matmul(13, 33, 7, 0, 1, 2, 1, 1, VT_ACT_RELU, 0, "");
    vt_cc_matmul(13, 33, 7, 0, 1, 1, 0, 1, VT_ACT_LEAKY_RELU, 0.1f, "");
    vt_cc_matmul(13, 33, 7, 0, 1, 1, 0, 1, VT_ACT_SELU, 0, "");
    vt_cc_matmul(64, 3072, 1024, 0, 1, 1, 0, 1, VT_ACT_RELU, 0, "linear ");    /* forward of linear 3072->1024 */
    vt_cc_matmul(64, 1024, 3072, 0, 0, 1, 0, 0, VT_ACT_NONE, 0, "linear-dx "); /* dx = dy W */
    vt_cc_matmul(1024, 64, 3072, 1, 0, 1, 1, 0, VT_ACT_NONE, 0, "linear-dw "); /* dW += dy^T x */
    vt_cc_matmul(64, 1024, 100, 0, 1, 1, 0, 1, VT_ACT_NONE, 0, "head ");
    /* batch-sized x W^T with a K that is not a multiple of 16, alpha and every epilogue */
    vt_cc_matmul(8, 259, 12, 0, 1, 0.5f, 0, 1, VT_ACT_LEAKY_RELU, 0.1f, "nt ");
    vt_cc_matmul(4, 256, 4, 0, 1, 1, 0, 0, VT_ACT_SELU, 0, "nt ");
    /* multiples of 4 from 128 rows up (the GPU backends' vec4 paths) with partial tiles on every edge,
     * and a tall-K product few enough outputs that K is split into slices */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) vt_cc_matmul(132, 516, 260, ta, tb, 1, 0, 1, VT_ACT_RELU, 0, "vec4 ");
    vt_cc_matmul(128, 2048, 8, 0, 0, 1, 0.5f, 0, VT_ACT_NONE, 0, "split-k ");
    vt_cc_matmul(128, 2048, 12, 1, 1, 1, 0, 1, VT_ACT_NONE, 0, "split-k ");

    vt_cc_bias_grad(2, 5, 7, 1, 1);
    vt_cc_bias_grad(2, 64, 1024, 1, 1);
    vt_cc_bias_grad(4, 3, 13, 5, 7);
    vt_cc_bias_grad(4, 8, 64, 8, 8);

    /* CONV2D and its two backward ops on the same geometry */
    vt_cc_conv_all(1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, "");
    vt_cc_conv_all(2, 3, 7, 5, 5, 3, 3, 1, 1, 1, 1, "");
    vt_cc_conv_all(2, 5, 13, 13, 7, 5, 5, 2, 2, 2, 2, "");
    vt_cc_conv_all(3, 7, 11, 9, 4, 3, 1, 2, 1, 1, 0, "");
    vt_cc_conv_all(1, 3, 33, 33, 5, 3, 3, 3, 3, 0, 0, "");
    vt_cc_conv_all(4, 3, 32, 32, 16, 5, 5, 2, 2, 2, 2, "stem ");
    vt_cc_conv_all(4, 64, 8, 8, 64, 3, 3, 1, 1, 1, 1, "resnet ");
    vt_cc_conv_all(2, 128, 8, 8, 256, 3, 3, 2, 2, 1, 1, "resnet ");
    vt_cc_conv_all(2, 64, 16, 16, 128, 1, 1, 2, 2, 0, 0, "downsample ");
    /* small outputs over many images: the CPU's grouped GEMMs (whole and partial groups) */
    vt_cc_conv_all(8, 32, 2, 2, 48, 3, 3, 1, 1, 1, 1, "deep ");
    vt_cc_conv_all(5, 12, 3, 3, 24, 3, 3, 2, 2, 1, 1, "deep ");
    /* 16 and 32 output channels: the CPU's direct kernels, with every width of partial tile. */
    vt_cc_conv_all(3, 3, 32, 32, 16, 5, 5, 1, 1, 2, 2, "pool-cnn ");
    vt_cc_conv_all(2, 16, 16, 16, 16, 5, 5, 1, 1, 2, 2, "pool-cnn ");
    vt_cc_conv_all(2, 5, 13, 11, 32, 3, 3, 1, 1, 1, 1, "");
    vt_cc_conv_all(2, 2, 9, 15, 16, 7, 7, 2, 1, 3, 3, "");
    vt_cc_conv_all(1, 4, 6, 7, 16, 3, 5, 1, 2, 0, 1, "");
    vt_cc_conv(0, 2, 5, 13, 13, 16, 5, 5, 1, 1, 2, 2, 1, VT_ACT_SELU, 0, "");
    vt_cc_conv(0, 2, 5, 13, 13, 32, 3, 3, 2, 2, 1, 1, 1, VT_ACT_LEAKY_RELU, 0.2f, "");
    vt_cc_conv(0, 2, 5, 13, 13, 7, 5, 5, 2, 2, 2, 2, 1, VT_ACT_LEAKY_RELU, 0.2f, "");
    vt_cc_conv(0, 2, 5, 13, 13, 7, 5, 5, 2, 2, 2, 2, 1, VT_ACT_SELU, 0, "");
    vt_cc_conv(0, 2, 3, 7, 5, 5, 3, 3, 1, 1, 1, 1, 1, VT_ACT_NONE, 0, "");

    /* CONV2D_TRANSPOSE: strides 1 to 3, every output_padding, paddings, odd and rectangular shapes, the
     * CPU's data-gradient paths (stride 1 as a forward convolution, 16 and 32 channels, grouped small
     * inputs, pointwise), NaN/Inf, and FCN-32s' upsampling by 32 (k64 s32 p16) of 21 or 7 class scores */
    vt_cc_conv_t(1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, "");
    vt_cc_conv_t(1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0, "");
    vt_cc_conv_t(2, 3, 5, 7, 4, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, "");
    vt_cc_conv_t(2, 3, 5, 7, 4, 3, 3, 1, 1, 1, 1, 0, 0, 1, 0, "");
    for (int op = 0; op < 2; op++) {
        vt_cc_conv_t(2, 5, 4, 6, 3, 3, 3, 2, 2, 1, 1, op, op, 0, 0, "");
        vt_cc_conv_t(2, 5, 4, 6, 3, 3, 3, 2, 2, 1, 1, op, 1 - op, 1, 0, "");
    }
    for (int op = 0; op < 3; op++) vt_cc_conv_t(1, 3, 5, 4, 2, 4, 5, 3, 3, 1, 2, op, 2 - op, 1, 0, "");
    vt_cc_conv_t(3, 7, 3, 5, 5, 2, 3, 2, 1, 0, 1, 1, 0, 1, 0, "");
    vt_cc_conv_t(2, 4, 3, 3, 6, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, "");
    vt_cc_conv_t(2, 8, 4, 4, 5, 1, 1, 2, 2, 0, 0, 1, 1, 1, 0, "");
    vt_cc_conv_t(2, 6, 5, 3, 7, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0, "");
    vt_cc_conv_t(2, 5, 7, 9, 16, 3, 3, 1, 1, 1, 1, 0, 0, 1, 0, "");
    vt_cc_conv_t(2, 3, 6, 5, 32, 5, 5, 1, 1, 2, 2, 0, 0, 1, 0, "");
    vt_cc_conv_t(8, 24, 3, 3, 12, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0, "");
    vt_cc_conv_t(2, 3, 5, 7, 4, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, "");
    vt_cc_conv_t(2, 3, 5, 7, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, "");
    vt_cc_conv_t(1, 21, 1, 1, 21, 64, 64, 32, 32, 16, 16, 0, 0, 0, 0, "fcn32s ");
    vt_cc_conv_t(2, 21, 2, 2, 21, 64, 64, 32, 32, 16, 16, 0, 0, 1, 0, "fcn32s ");
    vt_cc_conv_t(1, 7, 3, 3, 7, 64, 64, 32, 32, 16, 16, 0, 0, 0, 0, "fcn32s ");
    vt_cc_conv_t(1, 7, 4, 4, 7, 64, 64, 32, 32, 16, 16, 0, 0, 1, 0, "fcn32s ");

    /* POOL2D forward and backward */
    for (int bwd = 0; bwd < 2; bwd++) {
        vt_conf_init xi = bwd ? VT_CONF_INIT_DISTINCT : VT_CONF_INIT_UNIFORM;
        vt_cc_pool(bwd, VT_POOL_MAX, 2, 5, 13, 13, 3, 3, 2, 2, 1, 1, xi, "");
        vt_cc_pool(bwd, VT_POOL_MAX, 2, 64, 16, 16, 3, 3, 2, 2, 1, 1, xi, "resnet ");
        vt_cc_pool(bwd, VT_POOL_MAX, 3, 7, 8, 9, 2, 2, 2, 2, 0, 0, xi, "");
        vt_cc_pool(bwd, VT_POOL_MAX, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, xi, "");
        vt_cc_pool(bwd, VT_POOL_MAX, 2, 5, 13, 13, 3, 3, 2, 2, 1, 1, VT_CONF_INIT_INTS, "");
        vt_cc_pool(bwd, VT_POOL_AVG, 2, 5, 13, 13, 3, 3, 2, 2, 1, 1, VT_CONF_INIT_UNIFORM, "");
        vt_cc_pool(bwd, VT_POOL_AVG, 3, 7, 8, 9, 2, 2, 2, 2, 0, 0, VT_CONF_INIT_UNIFORM, "");
        vt_cc_pool(bwd, VT_POOL_AVG, 3, 5, 7, 5, 3, 1, 1, 1, 1, 0, VT_CONF_INIT_UNIFORM, "");
        vt_cc_pool(bwd, VT_POOL_AVG, 4, 512, 4, 4, 4, 4, 1, 1, 0, 0, VT_CONF_INIT_UNIFORM, "global ");
        /* ResNet18's global pool at batch 130: N*C = 66560 planes, more than a 65535 grid dimension */
        vt_cc_pool(bwd, VT_POOL_AVG, 130, 512, 1, 1, 1, 1, 1, 1, 0, 0, VT_CONF_INIT_UNIFORM, "many-planes ");
    }

    /* BATCHNORM: 2d and 1d, training and eval; then the backward, training and frozen */
    for (int tr = 0; tr < 2; tr++) {
        vt_cc_batchnorm(0, tr, 4, 4, 7, 5, 3, 1, "");
        vt_cc_batchnorm(0, tr, 4, 8, 64, 8, 8, 1, "resnet ");
        vt_cc_batchnorm(0, tr, 2, 5, 13, 1, 1, 1, "");
        vt_cc_batchnorm(0, tr, 2, 64, 1024, 1, 1, 1, "");
        vt_cc_batchnorm(1, tr, 4, 4, 7, 5, 3, 1, "");
        vt_cc_batchnorm(1, tr, 4, 8, 64, 8, 8, 1, "resnet ");
        vt_cc_batchnorm(1, tr, 2, 5, 13, 1, 1, 1, "");
        vt_cc_batchnorm(1, tr, 2, 64, 1024, 1, 1, 1, "");
    }
    vt_cc_batchnorm(0, 0, 4, 2, 3, 5, 5, 0, "");
    vt_cc_batchnorm(0, 1, 4, 2, 1, 1, 2, 1, "");

    /* the synchronised batch norm's ops: odd shapes, 2d and 1d, ResNet18's layers, one rank and several
     * (count > N*H*W), no running statistics / no parameter gradients (frozen), NaN/Inf */
    static const vt_op sbn_ops[4] = {VT_OP_BN_STATS, VT_OP_BN_APPLY, VT_OP_BN_BWD_STATS, VT_OP_BN_BWD_APPLY};
    for (int k = 0; k < 4; k++) {
        vt_op op = sbn_ops[k];
        vt_cc_sync_bn(op, 4, 4, 7, 5, 3, 1, 1, 0, "");
        vt_cc_sync_bn(op, 4, 4, 7, 5, 3, 4, 1, 0, "");
        vt_cc_sync_bn(op, 4, 8, 64, 8, 8, 1, 1, 0, "resnet ");
        vt_cc_sync_bn(op, 4, 4, 64, 8, 8, 2, 1, 0, "resnet ");
        vt_cc_sync_bn(op, 4, 2, 512, 1, 1, 4, 1, 0, "resnet ");
        vt_cc_sync_bn(op, 4, 1, 3, 1, 1, 2, 1, 0, "");
        vt_cc_sync_bn(op, 2, 5, 13, 1, 1, 1, 1, 0, "");
        vt_cc_sync_bn(op, 2, 64, 1024, 1, 1, 2, 1, 0, "");
        vt_cc_sync_bn(op, 4, 3, 5, 7, 11, 3, 0, 0, "");
        vt_cc_sync_bn(op, 4, 3, 5, 7, 11, 2, 1, 1, "");
        vt_cc_sync_bn(op, 2, 33, 13, 1, 1, 2, 1, 1, "");
    }

    /* activations, forward and backward, odd sizes, NaN/Inf propagation */
    static const vt_act kinds[4] = {VT_ACT_RELU, VT_ACT_LEAKY_RELU, VT_ACT_SELU, VT_ACT_GELU};
    for (int bwd = 0; bwd < 2; bwd++)
        for (int k = 0; k < 4; k++) {
            float a = kinds[k] == VT_ACT_LEAKY_RELU ? 0.01f : 0.0f;
            vt_cc_act(bwd, kinds[k], a, 0, 1, 1, 1, 1, 1);
            vt_cc_act(bwd, kinds[k], a, 0, 2, 5, 7, 1, 1);
            vt_cc_act(bwd, kinds[k], a, 0, 4, 3, 13, 5, 7);
            vt_cc_act(bwd, kinds[k], a, 0, 2, 64, 1024, 1, 1);
            vt_cc_act(bwd, kinds[k], a, 1, 2, 33, 13, 1, 1);
            if (kinds[k] == VT_ACT_LEAKY_RELU) vt_cc_act(bwd, kinds[k], 0.2f, 0, 2, 33, 13, 1, 1);
        }

    for (int bwd = 0; bwd < 2; bwd++) {
        vt_cc_dropout(bwd, 0.5f, 1, 0, 0, 1, 13, 1, 1, 1);
        vt_cc_dropout(bwd, 0.1f, 2, 7, 0, 2, 33, 7, 1, 1);
        vt_cc_dropout(bwd, 0.5f, 3, 5000000000ull, 0, 4, 4, 64, 8, 8);
        vt_cc_dropout(bwd, 0.0f, 4, 3, 0, 2, 5, 7, 1, 1);
        vt_cc_dropout(bwd, 0.25f, 5, 11, 1, 2, 33, 13, 1, 1);
    }

    vt_cc_add(0, 1, 1, 1, 1, 1);
    vt_cc_add(0, 2, 33, 13, 1, 1);
    vt_cc_add(0, 4, 8, 64, 8, 8);
    vt_cc_add(1, 2, 33, 13, 1, 1);

    for (int bwd = 0; bwd < 2; bwd++) {
        vt_cc_softmax_ce(bwd, 5, 7, 0.0f, 1, 3, 0);
        vt_cc_softmax_ce(bwd, 5, 7, 0.1f, 1, 3, 0);
        vt_cc_softmax_ce(bwd, 64, 100, 0.0f, 1, 5, 0);
        vt_cc_softmax_ce(bwd, 64, 100, 0.1f, 0, 5, 0);
        vt_cc_softmax_ce(bwd, 3, 1, 0.0f, 1, 1, 0);
        vt_cc_softmax_ce(bwd, 13, 33, 0.2f, 1, 60, 0); /* large logits: needs the max-subtraction */
        vt_cc_softmax_ce(bwd, 13, 33, 0.0f, 1, 2, 1);  /* ties: argmax takes the first maximum */
    }

    vt_cc_argmax(1, 1, 0);
    vt_cc_argmax(5, 7, 0);
    vt_cc_argmax(64, 100, 0);
    vt_cc_argmax(13, 33, 1);

    /* semantic segmentation: per-pixel cross-entropy ([N,K,H,W], classes on axis 1, stride H*W) without and
     * with ignored labels (255, K, -1, INT32_MIN), label smoothing with ignore, metrics onto non-zero
     * values, a batch of nothing but ignored labels (loss 0, nothing counted), K = 1, and ignore on [N,K] */
    for (int bwd = 0; bwd < 2; bwd++) {
        vt_cc_softmax_ce_px(bwd, 4, 2, 7, 5, 9, 0.0f, 0, 0.0f, 1);
        vt_cc_softmax_ce_px(bwd, 4, 2, 7, 5, 9, 0.0f, 1, 0.3f, 1);
        vt_cc_softmax_ce_px(bwd, 4, 1, 21, 16, 16, 0.0f, 1, 0.25f, 1);
        vt_cc_softmax_ce_px(bwd, 4, 3, 6, 33, 17, 0.1f, 1, 0.2f, 1);
        vt_cc_softmax_ce_px(bwd, 4, 3, 6, 33, 17, 0.0f, 1, 0.0f, 0);
        vt_cc_softmax_ce_px(bwd, 4, 2, 11, 45, 60, 0.0f, 1, 0.1f, 1);
        vt_cc_softmax_ce_px(bwd, 4, 2, 11, 7, 3, 0.1f, 1, 1.0f, 1);
        vt_cc_softmax_ce_px(bwd, 4, 1, 1, 3, 5, 0.0f, 1, 0.5f, 1);
        vt_cc_softmax_ce_px(bwd, 2, 13, 33, 1, 1, 0.0f, 1, 0.3f, 1);
        vt_cc_softmax_ce_px(bwd, 2, 13, 33, 1, 1, 0.2f, 1, 0.3f, 1);
        vt_cc_softmax_ce_px(bwd, 2, 5, 7, 1, 1, 0.0f, 1, 1.0f, 1);
    }
    vt_cc_argmax_px(2, 7, 5, 9, 0);
    vt_cc_argmax_px(3, 6, 33, 17, 1);
    vt_cc_argmax_px(1, 21, 16, 16, 1);
    vt_cc_argmax_px(2, 1, 5, 3, 0);

    /* CONFUSION (exact): K = 1, 6, 11 (CamVid: its void 11 out of range), 21; out-of-range predictions and
     * truths; counts accumulating onto non-zero values; 2M and 4M pixels crowded into a few bins, where
     * a GPU's atomics contend */
    vt_cc_confusion(1, 1, 1, 1, 1, 0.0f, 0, "");
    vt_cc_confusion(1, 2, 5, 9, 1, 0.3f, 1, "");
    vt_cc_confusion(6, 2, 7, 5, 6, 0.2f, 0, "");
    vt_cc_confusion(6, 3, 33, 17, 6, 0.2f, 1, "");
    vt_cc_confusion(11, 1, 45, 60, 12, 0.1f, 1, "camvid ");
    vt_cc_confusion(21, 2, 64, 64, 21, 0.25f, 1, "");
    vt_cc_confusion(21, 1, 3, 7, 21, 1.0f, 1, "");
    vt_cc_confusion(1, 8, 512, 512, 1, 0.1f, 1, "large ");
    vt_cc_confusion(21, 16, 512, 512, 2, 0.05f, 1, "large ");

    for (int bwd = 0; bwd < 2; bwd++)
        for (int m = 0; m < 2; m++) {
            vt_cc_upsample(bwd, (vt_upsample_mode)m, 2, 3, 32, 32, 64, 64);
            vt_cc_upsample(bwd, (vt_upsample_mode)m, 2, 3, 5, 7, 13, 11);
            vt_cc_upsample(bwd, (vt_upsample_mode)m, 1, 2, 13, 13, 5, 5);
            vt_cc_upsample(bwd, (vt_upsample_mode)m, 1, 1, 1, 1, 3, 3);
        }

    vt_cc_batch_prep(37, 3, 32, 32, 16, 5, 4, 1, 0);
    vt_cc_batch_prep(37, 3, 32, 32, 16, 21, 4, 1, 4294967301ull);
    vt_cc_batch_prep(20, 3, 32, 32, 20, 0, 0, 0, 3);
    vt_cc_batch_prep(9, 1, 7, 5, 5, 3, 2, 1, 12);
    vt_cc_batch_prep(9, 4, 5, 7, 9, 0, 3, 0, 1);
    /* crops smaller than the image (drawn or centred, odd and even spans), segmentation masks (u8 in, i32
     * out, 255 outside the image), flip, 1 and 3 channels, and the i32 labels with a crop */
    vt_cc_batch_prep_crop(9, 3, 13, 11, 5, 8, 7, 2, 0, 0, 0, 1, 5);
    vt_cc_batch_prep_crop(9, 3, 13, 11, 5, 8, 7, 3, 2, 1, 0, 1, 4294967301ull);
    vt_cc_batch_prep_crop(9, 1, 13, 11, 5, 8, 7, 1, 0, 1, 1, 1, 3);
    vt_cc_batch_prep_crop(9, 1, 12, 10, 4, 7, 4, 4, 3, 1, 1, 1, 7);
    vt_cc_batch_prep_crop(9, 3, 12, 10, 4, 7, 4, 4, 3, 0, 1, 1, 7);
    vt_cc_batch_prep_crop(6, 3, 32, 48, 4, 24, 32, 2, 0, 1, 0, 1, 11);
    vt_cc_batch_prep_crop(6, 3, 20, 20, 6, 20, 20, 0, 1, 1, 0, 1, 2);
    vt_cc_batch_prep_crop(37, 3, 32, 32, 16, 28, 28, 5, 4, 1, 0, 0, 0);
    vt_cc_batch_prep_crop(9, 1, 7, 5, 5, 3, 4, 3, 2, 1, 1, 0, 12);

    vt_cc_sgd(0, 0, 0, 1, 13, 1);
    vt_cc_sgd(0, 5e-4f, 0, 1, 33, 7);
    vt_cc_sgd(0.9f, 0, 0, 1, 33, 7);
    vt_cc_sgd(0.9f, 5e-4f, 0, 1, 33, 7);
    vt_cc_sgd(0.9f, 5e-4f, 1, 1, 33, 7);
    vt_cc_sgd(0.9f, 5e-4f, 1, 0.5f, 1024, 33);

    vt_cc_adam(0, 0, 0, 0, 13, 1);
    vt_cc_adam(0, 1e-2, 9, 0, 33, 7);
    vt_cc_adam(1, 1e-2, 0, 0, 33, 7);
    vt_cc_adam(1, 5e-2, 1000, 400, 33, 7);
    vt_cc_adam(1, 1e-2, 5, 0, 1024, 33);
    /* t = 1, 2, 10, 1000, with and without a step offset */
    vt_cc_adam_update(0, 0.9, 0, 0, 0, 33, 7);
    vt_cc_adam_update(1, 0.9, 1e-2, 0, 0, 33, 7);
    vt_cc_adam_update(0, 0.9, 0, 5, 4, 33, 7);
    vt_cc_adam_update(0, 0.9, 1e-2, 1, 0, 33, 7);
    vt_cc_adam_update(1, 0.9, 1e-2, 109, 100, 33, 7);
    vt_cc_adam_update(0, 0.9, 0, 9, 0, 1024, 33);
    vt_cc_adam_update(1, 0.9, 5e-2, 1999, 1000, 33, 7);
    vt_cc_adam_update(0, 0.9, 1e-2, 999, 0, 33, 7);
    vt_cc_adam_update(0, 0.5, 0, 2, 0, 13, 5);
    vt_cc_adam_update(1, 0.3, 1e-2, 9, 0, 13, 5);

    vt_cc_fill(VT_F32, 0.0f, 1, 1, 1, 1, 1);
    vt_cc_fill(VT_F32, -1.5f, 2, 33, 7, 1, 1);
    vt_cc_fill(VT_F32, 3.25f, 4, 3, 5, 7, 11);
    vt_cc_fill(VT_I32, 7.0f, 1, 13, 1, 1, 1);
    vt_cc_fill(VT_U8, 200.0f, 1, 37, 1, 1, 1);

    /* NONFINITE: one element, odd sizes, sizes that span many workgroups / threads; the special value
     * first, in the middle and last; huge finite values (largest exponent below all ones) */
    vt_cc_nonfinite(1, 1, -1, 1, 0, 0.5f, 0, "");
    vt_cc_nonfinite(1, 1, -1, 1, 0, NAN, 0, "");
    vt_cc_nonfinite(1, 1, -1, 1, 0, -INFINITY, 0, "");
    vt_cc_nonfinite(33, 7, -1, 1, 0, 0.5f, 0, "");
    vt_cc_nonfinite(33, 7, -1, 1, 0, NAN, 0, "");
    vt_cc_nonfinite(33, 7, -1, 1, 115, NAN, 0, "");
    vt_cc_nonfinite(33, 7, -1, 1, -1, NAN, 0, "");
    vt_cc_nonfinite(33, 7, -1, 1, 115, INFINITY, 0, "");
    vt_cc_nonfinite(33, 7, -1, 1, -1, -INFINITY, 0, "");
    vt_cc_nonfinite(1031, 1023, -1, 1, 0, 0.5f, 0, "large ");
    vt_cc_nonfinite(1031, 1023, -1, 1, 0, NAN, 0, "large ");
    vt_cc_nonfinite(1031, 1023, -1, 1, 527345, INFINITY, 0, "large ");
    vt_cc_nonfinite(1031, 1023, -1, 1, -1, NAN, 0, "large ");
    vt_cc_nonfinite(1031, 1023, -1, 1, -1, -INFINITY, 0, "large ");
    vt_cc_nonfinite(257, 129, -1.7e38f, 1.7e38f, 1000, FLT_MAX, 0, "huge ");
    vt_cc_nonfinite(257, 129, -1.7e38f, 1.7e38f, -1, -FLT_MAX, 0, "huge ");
    vt_cc_nonfinite(13, 5, -1, 1, 3, 0.25f, 1, "");
    vt_cc_nonfinite(1031, 1023, -1, 1, 3, 0.25f, 1, "large ");
    vt_cc_nonfinite(13, 5, -1, 1, 3, NAN, 1, "");
}

static void ensure_cases(void) {
    if (vt_n_cases || vt_cases_failed) return;
    build_cases();
}

int vt_conf_builtin_count(void) {
    ensure_cases();
    return vt_cases_failed ? 0 : vt_n_cases;
}

const vt_conf_case *vt_conf_builtin(int i) {
    ensure_cases();
    return (i >= 0 && i < vt_n_cases && !vt_cases_failed) ? &vt_cases[i] : NULL;
}
