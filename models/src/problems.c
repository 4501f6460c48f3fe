/* The table of the practice's problems (1-8 classification, 9-11 segmentation) and their default
 * hyper-parameters. Classification defaults were chosen to train well on CIFAR at batch 64 (MLP/CNN)
 * or 128 (ResNet18), not merely to run: with 3072 normalised inputs, SGD with momentum 0.9 needs
 * lr <= ~0.005 on the input layer to stay stable (lr 0.01 made the linear model's loss climb above
 * ln(K) on CIFAR-10). */
#include <stdlib.h>
#include <string.h>

#include "vt/models.h"

static const vt_problem vt_problems[] = {
    {1, "linear", "softmax classifier: one linear layer, SGD", VT_ARCH_LINEAR, "sgd", 0.001f, 0.9f, 0.0f, 0, "constant",
     10, 64, 0, 0.0f, 0, 9000, 0},
    {2, "mlp", "one hidden layer of 1024 ReLU units, SGD", VT_ARCH_MLP, "sgd", 0.005f, 0.9f, 0.0f, 0, "constant", 15,
     64, 0, 0.0f, 0, 3000, 0},
    {3, "deep-mlp", "3072-1024-512-256-K with cosine learning-rate decay, SGD", VT_ARCH_DEEP_MLP, "sgd", 0.01f, 0.9f,
     0.0f, 0, "cosine:20", 20, 64, 0, 0.0f, 0, 2500, 0},
    {4, "cnn-stride", "two 5x5 convs (16 filters, stride 2) + one FC, Adam", VT_ARCH_CNN_STRIDE, "adam", 0.001f, 0.0f,
     0.0f, 0, "constant", 15, 64, 0, 0.0f, 0, 3000, 0},
    {5, "cnn-pool", "two 5x5 convs (16 filters) each + 2x2 max-pool + one FC, Adam", VT_ARCH_CNN_POOL, "adam", 0.001f,
     0.0f, 0.0f, 0, "constant", 15, 64, 0, 0.0f, 0, 1500, 0},
    {6, "cnn-dropout", "problem 5 + a hidden FC of 512 with dropout 0.5, Adam", VT_ARCH_CNN_DROPOUT, "adam", 0.001f,
     0.0f, 0.0f, 0, "constant", 20, 64, 0, 0.5f, 0, 1400, 0},
    {7, "resnet18-finetune", "ImageNet-pretrained ResNet18, new 100-way head, fine-tuned", VT_ARCH_RESNET18, "sgd",
     0.01f, 0.9f, 5e-4f, 0, "cosine:10", 10, 128, 1, 0.0f, 1, 120, 0},
    {8, "resnet18-scratch", "ResNet18 from random initialisation", VT_ARCH_RESNET18, "sgd", 0.1f, 0.9f, 5e-4f, 0,
     "cosine:30", 30, 128, 1, 0.0f, 0, 120, 0},
    /* Segmentation (mIoU): VGG16-based FCNs at batch 8, Adam 1e-4 at a constant rate, random crop + flip
     * of image and mask. Throughput is a rough figure for 224x224 crops (VGG16's ~15 GFLOP forward plus
     * fc6/fc7 at 4096 channels, three times over for a training step). */
    {9, "fcn32s-scratch", "FCN-32s (VGG16, 32x bilinear upsampling) from random initialisation, Adam", VT_ARCH_FCN32S,
     "adam", 1e-4f, 0.0f, 0.0f, 0, "constant", 30, 8, 1, 0.5f, 0, 0.8, 1},
    {10, "fcn32s-pretrained", "FCN-32s on an ImageNet-pretrained VGG16 (torchvision weights), Adam", VT_ARCH_FCN32S,
     "adam", 1e-4f, 0.0f, 0.0f, 0, "constant", 30, 8, 1, 0.5f, 1, 0.8, 1},
    /* the improvement keeps the VGG16 backbone (and its import) so that the comparison isolates the skips */
    {11, "fcn8s", "FCN-8s: FCN-32s plus the skips from pool4 and pool3 (finer masks), Adam", VT_ARCH_FCN8S, "adam",
     1e-4f, 0.0f, 0.0f, 0, "constant", 30, 8, 1, 0.5f, 0, 0.75, 1},
};

int vt_problem_count(void) { return (int)(sizeof vt_problems / sizeof vt_problems[0]); }

const vt_problem *vt_problem_get(int i) { return (i >= 0 && i < vt_problem_count()) ? &vt_problems[i] : NULL; }

const vt_problem *vt_problem_find(const char *key) {
    if (!key || !*key) return NULL;
    char *end;
    long id = strtol(key, &end, 10);
    for (int i = 0; i < vt_problem_count(); i++) {
        if (*end == 0 && vt_problems[i].id == id) return &vt_problems[i];
        if (strcmp(vt_problems[i].name, key) == 0) return &vt_problems[i];
    }
    return NULL;
}

const char *vt_arch_name(vt_arch a) {
    switch (a) {
    case VT_ARCH_LINEAR: return "linear";
    case VT_ARCH_MLP: return "mlp-1024";
    case VT_ARCH_DEEP_MLP: return "mlp-1024-512-256";
    case VT_ARCH_CNN_STRIDE: return "cnn-stride2";
    case VT_ARCH_CNN_POOL: return "cnn-maxpool";
    case VT_ARCH_CNN_DROPOUT: return "cnn-maxpool-fc512-dropout";
    case VT_ARCH_RESNET18: return "resnet18";
    case VT_ARCH_FCN32S: return "fcn32s-vgg16";
    case VT_ARCH_FCN8S: return "fcn8s-vgg16";
    }
    return "?";
}

int vt_arch_is_segmentation(vt_arch a) { return a == VT_ARCH_FCN32S || a == VT_ARCH_FCN8S; }

void vt_model_cfg_default(const vt_problem *p, int n_classes, int c, int h, int w, vt_model_cfg *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->arch = p->arch;
    cfg->n_classes = n_classes;
    cfg->in_c = c;
    cfg->in_h = h;
    cfg->in_w = w;
    cfg->act = VT_ACT_RELU;
    cfg->act_alpha = 0.01f;
    cfg->dropout = p->dropout;
    cfg->width = 64;
    cfg->batchnorm = p->arch == VT_ARCH_RESNET18;
    cfg->fc_width = 0; /* FCN: 64 * width, the paper's 4096 at width 64 */
}
