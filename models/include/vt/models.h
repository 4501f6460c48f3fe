/* The practice's problems: their models (built into a vt_graph) and their default hyper-parameters.
 * Model code lives in models/; names of parameters follow PyTorch/torchvision exactly. */
#ifndef VT_MODELS_H
#define VT_MODELS_H

#include "vt/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum vt_arch {
    VT_ARCH_LINEAR = 0,
    VT_ARCH_MLP,
    VT_ARCH_DEEP_MLP,
    VT_ARCH_CNN_STRIDE,
    VT_ARCH_CNN_POOL,
    VT_ARCH_CNN_DROPOUT,
    VT_ARCH_RESNET18,
    VT_ARCH_FCN32S, /* semantic segmentation: VGG16 features, fc6/fc7 as convolutions, 32x upsampling */
    VT_ARCH_FCN8S,  /* the same with the FCN paper's skips from pool3 and pool4 */
} vt_arch;

/* Everything that shapes the network (not the optimisation). */
typedef struct vt_model_cfg {
    vt_arch arch;
    int n_classes;
    int in_c, in_h, in_w; /* dataset image size */
    int batchnorm;        /* BN after every hidden linear/conv (always on for ResNet18) */
    vt_act act;           /* hidden activation */
    float act_alpha;      /* LeakyReLU slope */
    float dropout;        /* on hidden layers (cnn-dropout: its hidden FC); 0 = none */
    int stem_cifar;       /* ResNet18: 3x3 stride-1 stem, no max-pool */
    int input_size;       /* ResNet18: bilinear upsample to this size on the device (0 = as is) */
    int width;            /* ResNet18: channels of layer1 (64 = torchvision; smaller for tests) */
    int frozen_bn;        /* ResNet18: batch norm uses running statistics and is not trained */
    int fc_width;         /* FCN: channels of fc6/fc7 (4096 = the paper; 0 = 64 * width) */
} vt_model_cfg;

/* Defaults of one problem of the practice. */
typedef struct vt_problem {
    int id;            /* 1..11 */
    const char *name;  /* "linear", "mlp", ... */
    const char *title; /* one line */
    vt_arch arch;
    const char *optimizer; /* "sgd", "adam", "adamw" */
    float lr, momentum, weight_decay;
    int nesterov;
    const char *schedule; /* vt_schedule_parse syntax */
    int epochs, batch_size;
    int augment; /* random crop (pad 4) + horizontal flip */
    float dropout;
    int pretrained;                /* needs --pretrained weights */
    double expected_img_per_s_cpu; /* rough training throughput on a 2-core CPU, for ETA before starting */
    int segmentation;              /* 1: per-pixel classes (problems 9-11), scored by mIoU */
} vt_problem;

int vt_problem_count(void);
const vt_problem *vt_problem_get(int i);
/* By number ("5") or name ("cnn-pool"); NULL if unknown. */
const vt_problem *vt_problem_find(const char *key);
/* The model configuration a problem implies for a dataset of the given shape. */
void vt_model_cfg_default(const vt_problem *p, int n_classes, int c, int h, int w, vt_model_cfg *cfg);
/* Builds the network on x [N,C,H,W] and returns the logits [N,K], or [N,K,H,W] for a segmentation
 * architecture (vt_arch_is_segmentation). Parameters of the final classifier are put in group 1 (the
 * head), all others in group 0. */
vt_tensor *vt_model_build(vt_graph *g, const vt_model_cfg *cfg, vt_tensor *x);
const char *vt_arch_name(vt_arch a);
/* FCN-32s and FCN-8s: logits per pixel at the input's height and width (any size from 32x32 up: the
 * upsampling layers are given the sizes of pool4, pool3 and the input, as PyTorch's output_size). */
int vt_arch_is_segmentation(vt_arch a);
/* Pretrained import: the name under which a parameter of this model is looked for in an imported
 * file when its own name is absent (torchvision's VGG16 "classifier.0.weight" [4096,25088] for FCN's
 * "fc6.weight" [4096,512,7,7], which the importer then reads with the same elements in the model's
 * shape); NULL when there is none. */
const char *vt_model_import_alias(const vt_model_cfg *cfg, const char *param_name);

#ifdef __cplusplus
}
#endif
#endif
