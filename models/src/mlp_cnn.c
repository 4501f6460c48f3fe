/* The small models of problems 1-6: linear, MLPs and the two-conv CNNs. Hidden layers take the
 * configured activation, optional batch norm and dropout; the classifier is parameter group 1. */
#include <stdio.h>

#include "vt/models.h"

static vt_init hidden_init(const vt_model_cfg *cfg) {
    return cfg->act == VT_ACT_SELU ? VT_INIT_LECUN_NORMAL : VT_INIT_UNIFORM_FAN_IN;
}

/* linear -> [bn] -> act -> [dropout]; the activation is fused into the GEMM when there is no BN. */
static vt_tensor *hidden_linear(vt_graph *g, const vt_model_cfg *cfg, vt_tensor *x, const char *name, int64_t out) {
    if (cfg->batchnorm) {
        char bn[32];
        snprintf(bn, sizeof bn, "%s_bn", name);
        x = vt_g_linear(g, x, name, out, 0, VT_ACT_NONE, 0, hidden_init(cfg));
        x = vt_g_batchnorm(g, x, bn, 0.1f, 1e-5f, 0);
        x = vt_g_act(g, x, cfg->act, cfg->act_alpha);
    } else {
        x = vt_g_linear(g, x, name, out, 1, cfg->act, cfg->act_alpha, hidden_init(cfg));
    }
    return vt_g_dropout(g, x, cfg->dropout);
}

static vt_tensor *conv_block(vt_graph *g, const vt_model_cfg *cfg, vt_tensor *x, const char *name, int stride,
                             int pool) {
    if (cfg->batchnorm) {
        char bn[32];
        snprintf(bn, sizeof bn, "%s_bn", name);
        x = vt_g_conv2d(g, x, name, 16, 5, stride, 2, 0, VT_ACT_NONE, 0, hidden_init(cfg));
        x = vt_g_batchnorm(g, x, bn, 0.1f, 1e-5f, 0);
        x = vt_g_act(g, x, cfg->act, cfg->act_alpha);
    } else {
        x = vt_g_conv2d(g, x, name, 16, 5, stride, 2, 1, cfg->act, cfg->act_alpha, hidden_init(cfg));
    }
    if (pool) x = vt_g_pool2d(g, x, VT_POOL_MAX, 2, 2, 0);
    return x;
}

static vt_tensor *classifier(vt_graph *g, const vt_model_cfg *cfg, vt_tensor *x, const char *name) {
    vt_params_set_group(vt_graph_params(g), 1);
    x = vt_g_linear(g, x, name, cfg->n_classes, 1, VT_ACT_NONE, 0, VT_INIT_UNIFORM_FAN_IN);
    vt_params_set_group(vt_graph_params(g), 0);
    return x;
}

vt_tensor *vt_model_build_resnet18(vt_graph *g, const vt_model_cfg *cfg, vt_tensor *x);
vt_tensor *vt_model_build_fcn(vt_graph *g, const vt_model_cfg *cfg, vt_tensor *x);

vt_tensor *vt_model_build(vt_graph *g, const vt_model_cfg *cfg, vt_tensor *x) {
    vt_params_set_group(vt_graph_params(g), 0);
    switch (cfg->arch) {
    case VT_ARCH_LINEAR: return classifier(g, cfg, vt_graph_flatten(g, x), "fc");
    case VT_ARCH_MLP:
        x = hidden_linear(g, cfg, vt_graph_flatten(g, x), "fc1", 1024);
        return classifier(g, cfg, x, "fc2");
    case VT_ARCH_DEEP_MLP:
        x = hidden_linear(g, cfg, vt_graph_flatten(g, x), "fc1", 1024);
        x = hidden_linear(g, cfg, x, "fc2", 512);
        x = hidden_linear(g, cfg, x, "fc3", 256);
        return classifier(g, cfg, x, "fc4");
    case VT_ARCH_CNN_STRIDE:
        x = conv_block(g, cfg, x, "conv1", 2, 0);
        x = conv_block(g, cfg, x, "conv2", 2, 0);
        x = vt_g_dropout(g, x, cfg->dropout);
        return classifier(g, cfg, x, "fc");
    case VT_ARCH_CNN_POOL:
        x = conv_block(g, cfg, x, "conv1", 1, 1);
        x = conv_block(g, cfg, x, "conv2", 1, 1);
        x = vt_g_dropout(g, x, cfg->dropout);
        return classifier(g, cfg, x, "fc");
    case VT_ARCH_CNN_DROPOUT: {
        x = conv_block(g, cfg, x, "conv1", 1, 1);
        x = conv_block(g, cfg, x, "conv2", 1, 1);
        x = hidden_linear(g, cfg, vt_graph_flatten(g, x), "fc1", 512);
        return classifier(g, cfg, x, "fc2");
    }
    case VT_ARCH_RESNET18: return vt_model_build_resnet18(g, cfg, x);
    case VT_ARCH_FCN32S:
    case VT_ARCH_FCN8S: return vt_model_build_fcn(g, cfg, x);
    }
    return NULL;
}
