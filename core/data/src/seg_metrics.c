/* The segmentation metric: a confusion matrix over a whole set, per-class IoU, mIoU, pixel accuracy. */
#include "vt/segdata.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

vt_status vt_seg_confusion_init(vt_seg_confusion *c, int k) {
    memset(c, 0, sizeof *c);
    if (k < 1 || k > 255) return vt_error(VT_ERR_INVALID_ARG, "confusion matrix: %d classes (1..255)", k);
    c->m = calloc((size_t)(k + 1) * (size_t)(k + 1), sizeof *c->m);
    if (!c->m) return vt_error(VT_ERR_OOM, "confusion matrix: no memory for %d classes", k);
    c->k = k;
    return VT_OK;
}

void vt_seg_confusion_free(vt_seg_confusion *c) {
    if (!c) return;
    free(c->m);
    memset(c, 0, sizeof *c);
}

vt_status vt_seg_confusion_add(vt_seg_confusion *c, const uint8_t *pred, const uint8_t *truth, int64_t n,
                               uint8_t ignore) {
    if (!c || !c->m || n < 0 || (n > 0 && (!pred || !truth)))
        return vt_error(VT_ERR_INVALID_ARG, "confusion matrix: bad arguments");
    int k = c->k;
    /* Checked first, so that a refused call adds nothing. */
    for (int64_t i = 0; i < n; i++)
        if (truth[i] >= k && truth[i] != ignore)
            return vt_error(VT_ERR_INVALID_ARG, "confusion matrix: truth pixel %lld is %u, neither a class (0..%d) nor "
                            "the ignore value %u", (long long)i, truth[i], k - 1, ignore);
    for (int64_t i = 0; i < n; i++) {
        int t = truth[i] == ignore ? k : truth[i];
        int p = pred[i] < k ? pred[i] : k;
        c->m[(size_t)t * (size_t)(k + 1) + (size_t)p]++;
    }
    return VT_OK;
}

void vt_seg_scores_compute(const vt_seg_confusion *c, vt_seg_scores *s) {
    memset(s, 0, sizeof *s);
    int k = c->k, k1 = k + 1;
    uint64_t correct = 0, known = 0;
    double sum = 0, sum_p = 0;
    int valid_p = 0;
    for (int i = 0; i < k; i++) {
        uint64_t tp = c->m[(size_t)i * k1 + i], fn = 0, fp = 0;
        for (int j = 0; j <= k; j++) /* truth i predicted anything else, "no class" included */
            if (j != i) fn += c->m[(size_t)i * k1 + j];
        for (int j = 0; j < k; j++) /* predicted i where the truth is another class */
            if (j != i) fp += c->m[(size_t)j * k1 + i];
        uint64_t fp_ignored = c->m[(size_t)k * k1 + i]; /* predicted i where the truth is ignored */
        uint64_t den = tp + fp + fn, den_p = den + fp_ignored;
        /* 0/0: the class is in neither prediction nor truth; it says nothing, so it leaves the mean. */
        s->iou[i] = den ? (double)tp / (double)den : NAN;
        s->iou_practice[i] = den_p ? (double)tp / (double)den_p : NAN;
        if (den) {
            sum += s->iou[i];
            s->n_valid++;
        }
        if (den_p) {
            sum_p += s->iou_practice[i];
            valid_p++;
        }
        correct += tp;
        for (int j = 0; j <= k; j++) known += c->m[(size_t)i * k1 + j];
    }
    s->miou = s->n_valid ? sum / s->n_valid : NAN;
    s->miou_practice = valid_p ? sum_p / valid_p : NAN;
    s->pixels = known;
    s->pixel_acc = known ? (double)correct / (double)known : NAN;
}
