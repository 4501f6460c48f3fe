/* ResNet18 with torchvision's architecture, parameter names and initialisation (BasicBlock x
 * [2,2,2,2]); --stem cifar swaps the 7x7/2 stem + max-pool for a 3x3/1 stem. */
#include <stdio.h>

#include "vt/models.h"

static vt_tensor *conv_bn(vt_graph *g, const vt_model_cfg *cfg, vt_tensor *x, const char *conv, const char *bn,
                          int64_t cout, int k, int stride, int pad, int act) {
    x = vt_g_conv2d(g, x, conv, cout, k, stride, pad, 0, VT_ACT_NONE, 0, VT_INIT_KAIMING_NORMAL_FAN_OUT);
    x = vt_g_batchnorm(g, x, bn, 0.1f, 1e-5f, cfg->frozen_bn);
    return act ? vt_g_act(g, x, cfg->act, cfg->act_alpha) : x;
}

static vt_tensor *basic_block(vt_graph *g, const vt_model_cfg *cfg, vt_tensor *x, const char *prefix, int64_t planes,
                              int stride) {
    char c1[48], b1[48], c2[48], b2[48], d0[48], d1[48];
    snprintf(c1, sizeof c1, "%s.conv1", prefix);
    snprintf(b1, sizeof b1, "%s.bn1", prefix);
    snprintf(c2, sizeof c2, "%s.conv2", prefix);
    snprintf(b2, sizeof b2, "%s.bn2", prefix);
    snprintf(d0, sizeof d0, "%s.downsample.0", prefix);
    snprintf(d1, sizeof d1, "%s.downsample.1", prefix);
    if (!x) return NULL;
    vt_tensor *shortcut = x;
    if (stride != 1 || x->shape[1] != planes) shortcut = conv_bn(g, cfg, x, d0, d1, planes, 1, stride, 0, 0);
    vt_tensor *y = conv_bn(g, cfg, x, c1, b1, planes, 3, stride, 1, 1);
    y = conv_bn(g, cfg, y, c2, b2, planes, 3, 1, 1, 0);
    y = vt_g_add(g, y, shortcut);
    return vt_g_act(g, y, cfg->act, cfg->act_alpha);
}

vt_tensor *vt_model_build_resnet18(vt_graph *g, const vt_model_cfg *cfg, vt_tensor *x);

vt_tensor *vt_model_build_resnet18(vt_graph *g, const vt_model_cfg *cfg, vt_tensor *x) {
    int64_t w = cfg->width > 0 ? cfg->width : 64;
    if (cfg->input_size > 0 && x && (x->shape[2] != cfg->input_size || x->shape[3] != cfg->input_size))
        x = vt_g_upsample(g, x, VT_UPSAMPLE_BILINEAR, cfg->input_size, cfg->input_size);
    if (cfg->stem_cifar) {
        x = conv_bn(g, cfg, x, "conv1", "bn1", w, 3, 1, 1, 1);
    } else {
        x = conv_bn(g, cfg, x, "conv1", "bn1", w, 7, 2, 3, 1);
        x = vt_g_pool2d(g, x, VT_POOL_MAX, 3, 2, 1);
    }
    static const int strides[4] = {1, 2, 2, 2};
    for (int l = 0; l < 4; l++) {
        int64_t planes = w << l;
        for (int b = 0; b < 2; b++) {
            char prefix[32];
            snprintf(prefix, sizeof prefix, "layer%d.%d", l + 1, b);
            x = basic_block(g, cfg, x, prefix, planes, b == 0 ? strides[l] : 1);
        }
    }
    x = vt_g_global_avgpool(g, x);
    vt_params_set_group(vt_graph_params(g), 1);
    x = vt_g_linear(g, x, "fc", cfg->n_classes, 1, VT_ACT_NONE, 0, VT_INIT_UNIFORM_FAN_IN);
    vt_params_set_group(vt_graph_params(g), 0);
    return x;
}
