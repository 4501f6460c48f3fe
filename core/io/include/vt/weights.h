/* Pretrained weights import/export: safetensors files and PyTorch torch.save() .pth archives,
 * read into a vt_tensor_dict of f32 host tensors named as in the source state_dict. */
#ifndef VT_WEIGHTS_H
#define VT_WEIGHTS_H

#include "vt/checkpoint.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Detects the format by content (safetensors, PyTorch zip .pth, or a vtrain checkpoint) and loads
 * every tensor. Floating tensors (f16/bf16/f64) become f32; int64 tensors (num_batches_tracked)
 * become i32 when they fit. The .pth pickle is read by a restricted reader that refuses every
 * global outside the short list a state_dict needs (docs/weights.md). *out must be empty. */
vt_status vt_weights_load(const char *path, vt_tensor_dict *out);

/* Writes a safetensors file (keys sorted, header padded to 8 bytes) atomically like vt_ckpt_write.
 * f32 -> F32, i32 named "*num_batches_tracked" -> I64, other i32 -> I32, u8 -> U8, u32 -> U32,
 * f16/bf16 -> F16/BF16. meta_json, when it is an object of strings, becomes __metadata__;
 * otherwise it is stored as the string value of __metadata__["vtrain_meta"]. */
vt_status vt_safetensors_write(const char *path, const vt_tensor_dict *d);

#ifdef __cplusplus
}
#endif
#endif
