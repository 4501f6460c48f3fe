/* The activation formulas, written once for every language that computes them: C (the CPU
 * reference and the hosts), CUDA, OpenCL C and GLSL. Plain defines only, so the same file compiles
 * everywhere: the OpenCL backend prepends it to its kernel sources, GLSL shaders include it through
 * glslang's include path, C and CUDA include it from vt/ops.h.
 *
 * Forward: y = f(x). Backward (ACT_BWD) is written in terms of the forward OUTPUT y for relu,
 * leaky_relu and selu (y decides the branch: y > 0 exactly when x > 0), but of the forward INPUT x
 * for gelu: gelu is not monotonic below x = -0.75, so y does not determine x. The graph passes x
 * as ACT_BWD's src1 for gelu and y for the others.
 *
 * GELU is PyTorch's default (approximate='none'): 0.5 x (1 + erf(x / sqrt(2))). GLSL has no erf: a
 * shader defines vt_erf(float) before including this file. Literals carry the f suffix, which C,
 * CUDA, OpenCL C and GLSL 4.50 all read as single precision. */
#ifndef VT_ACT_FORMULAS_H
#define VT_ACT_FORMULAS_H

#if defined(VULKAN) || defined(GL_SPIRV)
#define VT_EXP(x) exp(x)
#define VT_ERF(x) vt_erf(x)
#elif defined(__OPENCL_VERSION__)
#define VT_EXP(x) exp(x)
#define VT_ERF(x) erf(x)
#else
#define VT_EXP(x) expf(x)
#define VT_ERF(x) erff(x)
#endif

#define VT_SELU_SCALE    1.0507009873554804934193349852946f
#define VT_SELU_ALPHA    1.6732632423543772848170429916717f
#define VT_GELU_RSQRT2   0.70710678118654752440f /* 1/sqrt(2) */
#define VT_GELU_RSQRT2PI 0.39894228040143267794f /* 1/sqrt(2 pi) */

#define VT_RELU_FWD(x)              ((x) > 0.0f ? (x) : 0.0f)
#define VT_LEAKY_RELU_FWD(x, alpha) ((x) > 0.0f ? (x) : (alpha) * (x))
#define VT_SELU_FWD(x)              (VT_SELU_SCALE * ((x) > 0.0f ? (x) : VT_SELU_ALPHA * (VT_EXP(x) - 1.0f)))
#define VT_GELU_FWD(x)              (0.5f * (x) * (1.0f + VT_ERF((x)*VT_GELU_RSQRT2)))

/* dx from dy and the forward output y (relu, leaky_relu, selu) or input x (gelu) */
#define VT_RELU_BWD(y, dy)              ((y) > 0.0f ? (dy) : 0.0f)
#define VT_LEAKY_RELU_BWD(y, dy, alpha) ((y) > 0.0f ? (dy) : (alpha) * (dy))
#define VT_SELU_BWD(y, dy)              ((y) > 0.0f ? VT_SELU_SCALE * (dy) : ((y) + VT_SELU_SCALE * VT_SELU_ALPHA) * (dy))
/* d/dx [x Phi(x)] = Phi(x) + x phi(x), Phi(x) = (1 + erf(x/sqrt 2))/2, phi(x) = exp(-x^2/2)/sqrt(2 pi) */
#define VT_GELU_BWD(x, dy) \
    ((dy) * (0.5f * (1.0f + VT_ERF((x)*VT_GELU_RSQRT2)) + (x) * (VT_GELU_RSQRT2PI * VT_EXP(-0.5f * (x) * (x)))))

#endif
