/* VGG16 (torchvision's layout and names) and the FCN-32s / FCN-8s segmentation networks on it (Long et
 * al., "Fully Convolutional Networks for Semantic Segmentation"), in the "same size" form: no 100-pixel
 * padding and crop, the upsampling layers produce the input's height and width directly. */
#include <stdio.h>
#include <string.h>

#include "vt/models.h"

vt_tensor *vt_model_build_fcn(vt_graph *g, const vt_model_cfg *cfg, vt_tensor *x);

/* conv (bias) + ReLU with torchvision VGG's initialisation: kaiming normal (fan_out, relu) weights and
 * zero biases. vt_g_conv2d would give the bias PyTorch's default uniform init, so both parameters are
 * created here first, in PyTorch's order (weight, bias); the layer helper then finds them by name. */
static vt_tensor *conv_zero_bias(vt_graph *g, vt_tensor *x, const char *prefix, int64_t cout, int k, int pad,
                                 vt_init init, vt_act act) {
    if (x && x->ndim == 4 && vt_graph_status(g) == VT_OK) {
        /* a failure here (a clash with an existing parameter) is met again, and reported, by the helper */
        int64_t cin = x->shape[1];
        char name[64];
        vt_params *m = vt_graph_params(g);
        snprintf(name, sizeof name, "%s.weight", prefix);
        if (vt_params_param(m, name, 4, (int64_t[]){cout, cin, k, k}, init, cin * k * k, cout * k * k)) {
            snprintf(name, sizeof name, "%s.bias", prefix);
            vt_params_param(m, name, 1, &cout, VT_INIT_ZEROS, cin * k * k, cout * k * k);
        }
    }
    return vt_g_conv2d(g, x, prefix, cout, k, 1, pad, 1, act, 0.0f, init);
}

/* torchvision's vgg16().features: cfg "D" (64,64,M,128,128,M,256x3,M,512x3,M,512x3,M) with every
 * channel count scaled by width / 64. features.N is the index in torchvision's nn.Sequential, where a
 * convolution and its ReLU take two slots and a max-pool one. pools[i] receives the output of the
 * (i+1)-th max-pool (pool3 = pools[2], pool4 = pools[3], pool5 = pools[4]). */
static vt_tensor *vgg16_features(vt_graph *g, int64_t width, vt_tensor *x, vt_tensor *pools[5]) {
    static const int cfg_d[] = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0};
    int idx = 0, n_pool = 0;
    for (size_t i = 0; i < sizeof cfg_d / sizeof cfg_d[0]; i++) {
        if (cfg_d[i] == 0) {
            x = vt_g_pool2d(g, x, VT_POOL_MAX, 2, 2, 0);
            pools[n_pool++] = x;
            idx += 1;
            continue;
        }
        char prefix[32];
        snprintf(prefix, sizeof prefix, "features.%d", idx);
        x = conv_zero_bias(g, x, prefix, cfg_d[i] * width / 64, 3, 1, VT_INIT_KAIMING_NORMAL_FAN_OUT, VT_ACT_RELU);
        idx += 2;
    }
    return x;
}

/* A 1x1 class-scoring convolution, zero-initialised as in the FCN paper ("random initialization gave
 * neither better performance nor faster convergence"). */
static vt_tensor *score(vt_graph *g, vt_tensor *x, const char *prefix, int64_t n_classes) {
    return conv_zero_bias(g, x, prefix, n_classes, 1, 0, VT_INIT_ZEROS, VT_ACT_NONE);
}

/* A bilinear-initialised transposed convolution without bias to the given output size. */
static vt_tensor *upscore(vt_graph *g, vt_tensor *x, const char *prefix, int64_t n_classes, int k, int stride, int pad,
                          const vt_tensor *like) {
    /* without `like` (an earlier layer failed) the graph already holds the error */
    return vt_g_conv2d_transpose_to(g, like ? x : NULL, prefix, n_classes, k, stride, pad, 0, VT_INIT_BILINEAR,
                                    like ? like->shape[2] : 0, like ? like->shape[3] : 0);
}

vt_tensor *vt_model_build_fcn(vt_graph *g, const vt_model_cfg *cfg, vt_tensor *x) {
    int64_t w = cfg->width > 0 ? cfg->width : 64;
    int64_t fc = cfg->fc_width > 0 ? cfg->fc_width : 64 * w;
    int64_t k = cfg->n_classes;
    const vt_tensor *input = x;
    vt_tensor *pools[5] = {0};
    vt_tensor *h = vgg16_features(g, w, x, pools);
    /* fc6/fc7: VGG16's classifier.0/3 as convolutions (7x7 over pool5, padded to keep its size; 1x1),
     * initialised like torchvision's convolutions; pretrained weights come through the import alias */
    h = conv_zero_bias(g, h, "fc6", fc, 7, 3, VT_INIT_KAIMING_NORMAL_FAN_OUT, VT_ACT_RELU);
    h = vt_g_dropout(g, h, cfg->dropout);
    h = conv_zero_bias(g, h, "fc7", fc, 1, 0, VT_INIT_KAIMING_NORMAL_FAN_OUT, VT_ACT_RELU);
    h = vt_g_dropout(g, h, cfg->dropout);
    /* everything from here on is new to the VGG16 backbone: the head */
    vt_params_set_group(vt_graph_params(g), 1);
    h = score(g, h, "score_fr", k);
    if (cfg->arch == VT_ARCH_FCN8S) {
        /* the staged FCN-8s: 2x up to pool4's size + pool4's scores, 2x up to pool3's size + pool3's
         * scores, 8x up to the input's size (pool4/pool3 are not rescaled as in the at-once variant) */
        h = upscore(g, h, "upscore2", k, 4, 2, 1, pools[3]);
        h = vt_g_add(g, h, score(g, pools[3], "score_pool4", k));
        h = upscore(g, h, "upscore_pool4", k, 4, 2, 1, pools[2]);
        h = vt_g_add(g, h, score(g, pools[2], "score_pool3", k));
        h = upscore(g, h, "upscore8", k, 16, 8, 4, input);
    } else {
        h = upscore(g, h, "upscore", k, 64, 32, 16, input);
    }
    vt_params_set_group(vt_graph_params(g), 0);
    return h;
}

const char *vt_model_import_alias(const vt_model_cfg *cfg, const char *param_name) {
    if (!cfg || !param_name || !vt_arch_is_segmentation(cfg->arch)) return NULL;
    /* torchvision's VGG16 classifier: 0 = Linear(512*7*7, 4096), 3 = Linear(4096, 4096); their rows read
     * as [out, C, 7, 7] / [out, C, 1, 1] are exactly fc6/fc7's convolution weights */
    static const char *const alias[][2] = {
        {"fc6.weight", "classifier.0.weight"},
        {"fc6.bias", "classifier.0.bias"},
        {"fc7.weight", "classifier.3.weight"},
        {"fc7.bias", "classifier.3.bias"},
    };
    for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++)
        if (strcmp(param_name, alias[i][0]) == 0) return alias[i][1];
    return NULL;
}
