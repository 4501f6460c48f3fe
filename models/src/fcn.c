/* VGG16 (torchvision's layout and names) and the FCN-32s / FCN-8s segmentation networks on it. */
#include <stddef.h>

#include "vt/models.h"

vt_tensor *vt_model_build_fcn(vt_graph *g, const vt_model_cfg *cfg, vt_tensor *x);

vt_tensor *vt_model_build_fcn(vt_graph *g, const vt_model_cfg *cfg, vt_tensor *x) {
    (void)cfg;
    (void)x;
    (void)g;
    return NULL; /* replaced by the VGG16/FCN builder */
}

const char *vt_model_import_alias(const vt_model_cfg *cfg, const char *param_name) {
    (void)cfg;
    (void)param_name;
    return NULL;
}
