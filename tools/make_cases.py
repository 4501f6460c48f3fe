#!/usr/bin/env python3
"""Writes the external conformance cases tests/cases/*.json from an independent NumPy implementation
of the ops (conv2d fwd/bwd and transposed, pooling fwd/bwd, batchnorm fwd/bwd and its synchronised split ops, softmax
cross-entropy fwd/bwd, per pixel and with ignored labels, the confusion matrix, relu/leaky_relu/selu/gelu
fwd/bwd), and one step of torch.optim.Adam / AdamW (adam.json): with --torch the
real torch.optim.Adam / AdamW on the CPU when torch is importable, otherwise a float32 emulation of what
torch's CPU kernels compute. Inputs are float32; expected values are computed in float64 and stored rounded
to float32. Format: docs/conformance.md. tools/check_adam_torch.py checks adam.json against an installed torch.

usage: python3 tools/make_cases.py [--out tests/cases] [--seed 1] [--only adam] [--torch]
       (needs: pip install numpy; --torch: pip install torch)
"""
import argparse
import json
import math
import os
import sys

try:
    import numpy as np
except ImportError:
    sys.exit("make_cases.py needs NumPy: pip install numpy")

SELU_SCALE = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717


def f32(a):
    return np.asarray(a, dtype=np.float32)


def num(v):
    """A float32 value as JSON text that reads back exactly (NaN/Inf as strings)."""
    v = float(np.float32(v))
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return float("%.9g" % v)


def operand(a, dtype="f32", key="data"):
    a = np.asarray(a)
    vals = [int(v) for v in a.ravel()] if dtype != "f32" else [num(v) for v in a.ravel()]
    return {"dtype": dtype, "shape": list(a.shape), key: vals}


def out(a, init=None):
    d = operand(a, key="expected")
    if init is not None:
        d["data"] = [num(v) for v in np.asarray(init).ravel()]
    return d


class Gen:
    def __init__(self, seed):
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def uniform(self, shape, lo=-1.0, hi=1.0):
        return f32(self.rng.uniform(lo, hi, size=shape))

    def away_from_zero(self, shape, gap=0.05):
        x = self.rng.uniform(-2, 2, size=shape)
        return f32(np.where(x < 0, x - gap, x + gap))


# ---- convolution -------------------------------------------------------------------------------

def conv_out(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def conv2d_fwd(x, w, b, sh, sw, ph, pw):
    x, w = x.astype(np.float64), w.astype(np.float64)
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    P, Q = conv_out(H, R, sh, ph), conv_out(W, S, sw, pw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = np.zeros((N, K, P, Q))
    for r in range(R):
        for s in range(S):
            patch = xp[:, :, r:r + sh * (P - 1) + 1:sh, s:s + sw * (Q - 1) + 1:sw]
            y += np.einsum("ncpq,kc->nkpq", patch, w[:, :, r, s])
    if b is not None:
        y += b.astype(np.float64)[None, :, None, None]
    return y


def conv2d_bwd_data(dy, w, H, W, sh, sw, ph, pw):
    dy, w = dy.astype(np.float64), w.astype(np.float64)
    N, K, P, Q = dy.shape
    _, C, R, S = w.shape
    dxp = np.zeros((N, C, H + 2 * ph + sh * R, W + 2 * pw + sw * S))
    for r in range(R):
        for s in range(S):
            dxp[:, :, r:r + sh * (P - 1) + 1:sh, s:s + sw * (Q - 1) + 1:sw] += np.einsum("nkpq,kc->ncpq", dy, w[:, :, r, s])
    return dxp[:, :, ph:ph + H, pw:pw + W]


def conv2d_bwd_weight(dy, x, R, S, sh, sw, ph, pw):
    dy, x = dy.astype(np.float64), x.astype(np.float64)
    N, K, P, Q = dy.shape
    C = x.shape[1]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph + sh * R), (pw, pw + sw * S)))
    dw = np.zeros((K, C, R, S))
    for r in range(R):
        for s in range(S):
            patch = xp[:, :, r:r + sh * (P - 1) + 1:sh, s:s + sw * (Q - 1) + 1:sw]
            dw[:, :, r, s] = np.einsum("nkpq,ncpq->kc", dy, patch)
    return dw


def conv_cases(g):
    cases = []
    geoms = [  # N, C, H, W, K, R, S, sh, sw, ph, pw
        (2, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1),
        (1, 2, 9, 8, 3, 5, 5, 2, 2, 2, 2),
        (2, 3, 6, 7, 2, 3, 1, 2, 1, 1, 0),
        (1, 4, 8, 8, 5, 1, 1, 2, 2, 0, 0),
        (1, 3, 11, 11, 2, 3, 3, 3, 3, 0, 0),
    ]
    for (N, C, H, W, K, R, S, sh, sw, ph, pw) in geoms:
        P, Q = conv_out(H, R, sh, ph), conv_out(W, S, sw, pw)
        tag = "x%dx%dx%dx%d w%dx%dx%dx%d s%d,%d p%d,%d" % (N, C, H, W, K, C, R, S, sh, sw, ph, pw)
        params = {"stride_h": sh, "stride_w": sw, "pad_h": ph, "pad_w": pw}
        x, w, b = g.uniform((N, C, H, W)), g.uniform((K, C, R, S)), g.uniform((K,))
        for act in ("none", "relu"):
            y = conv2d_fwd(x, w, b, sh, sw, ph, pw)
            if act == "relu":
                y = np.maximum(y, 0)
            cases.append({"name": "np conv2d %s bias %s" % (tag, act), "op": "conv2d", "params": dict(params, act=act),
                          "src": [operand(x), operand(w), operand(b)], "dst": [out(y)],
                          "tolerance": {"red": C * R * S}})
        dy = g.uniform((N, K, P, Q))
        cases.append({"name": "np conv2d_bwd_data %s" % tag, "op": "conv2d_bwd_data", "params": params,
                      "src": [operand(dy), operand(w)], "dst": [out(conv2d_bwd_data(dy, w, H, W, sh, sw, ph, pw))],
                      "tolerance": {"red": K * R * S}})
        cases.append({"name": "np conv2d_bwd_weight %s" % tag, "op": "conv2d_bwd_weight", "params": params,
                      "src": [operand(dy), operand(x)], "dst": [out(conv2d_bwd_weight(dy, x, R, S, sh, sw, ph, pw))],
                      "tolerance": {"red": N * P * Q}})
    return cases + conv_transpose_cases(Gen(g.seed + 48))


def conv2d_transpose(x, w, b, sh, sw, ph, pw, oph, opw):
    """PyTorch's ConvTranspose2d as its definition: every input element scatters x * w[c] into the output
    window at (h*sh - ph, w*sw - pw), on a canvas with the padding around it (float64)."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    N, C, H, W = x.shape
    _, K, R, S = w.shape
    P, Q = (H - 1) * sh - 2 * ph + R + oph, (W - 1) * sw - 2 * pw + S + opw
    canvas = np.zeros((N, K, P + 2 * ph + R, Q + 2 * pw + S))
    for n in range(N):
        for c in range(C):
            for h in range(H):
                for v in range(W):
                    canvas[n, :, h * sh:h * sh + R, v * sw:v * sw + S] += x[n, c, h, v] * w[c]
    y = canvas[:, :, ph:ph + P, pw:pw + Q]
    if b is not None:
        y = y + b.astype(np.float64)[None, :, None, None]
    return y


def conv_transpose_cases(g):
    """CONV2D_TRANSPOSE (appended to conv2d.json from a stream of their own, so the other cases keep their
    values): strides 1 to 3, output_padding, with and without bias, and a small bilinear-style upsampling."""
    cases = []
    geoms = [  # N, C, H, W, K, R, S, sh, sw, ph, pw, oph, opw, bias
        (2, 3, 4, 5, 2, 3, 3, 1, 1, 1, 1, 0, 0, True),
        (1, 2, 3, 4, 3, 3, 3, 2, 2, 1, 1, 1, 0, True),
        (2, 3, 3, 2, 2, 4, 5, 3, 3, 1, 2, 2, 1, False),
        (1, 4, 2, 3, 3, 2, 3, 2, 1, 0, 1, 1, 0, True),
        (1, 3, 2, 2, 3, 16, 16, 8, 8, 4, 4, 0, 0, False),
    ]
    for (N, C, H, W, K, R, S, sh, sw, ph, pw, oph, opw, bias) in geoms:
        tag = "x%dx%dx%dx%d w%dx%dx%dx%d s%d,%d p%d,%d op%d,%d" % (N, C, H, W, C, K, R, S, sh, sw, ph, pw, oph, opw)
        params = {"stride_h": sh, "stride_w": sw, "pad_h": ph, "pad_w": pw}
        x, w, b = g.uniform((N, C, H, W)), g.uniform((C, K, R, S)), g.uniform((K,))
        y = conv2d_transpose(x, w, b if bias else None, sh, sw, ph, pw, oph, opw)
        src = [operand(x), operand(w)] + ([operand(b)] if bias else [])
        red = C * -(-R // sh) * -(-S // sw)
        cases.append({"name": "np conv2d_transpose %s%s" % (tag, " bias" if bias else ""), "op": "conv2d_transpose",
                      "params": params, "src": src, "dst": [out(y)], "tolerance": {"red": red}})
    return cases


# ---- pooling -----------------------------------------------------------------------------------

def pool_fwd(x, kind, k, s, p):
    x = x.astype(np.float64)
    N, C, H, W = x.shape
    P, Q = conv_out(H, k, s, p), conv_out(W, k, s, p)
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=(-np.inf if kind == "max" else 0.0))
    y = np.zeros((N, C, P, Q))
    for i in range(P):
        for j in range(Q):
            win = xp[:, :, i * s:i * s + k, j * s:j * s + k]
            y[:, :, i, j] = win.max(axis=(2, 3)) if kind == "max" else win.sum(axis=(2, 3)) / (k * k)
    return y


def pool_bwd(dy, x, kind, k, s, p):
    x, dy = x.astype(np.float64), dy.astype(np.float64)
    N, C, H, W = x.shape
    P, Q = dy.shape[2], dy.shape[3]
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    dxp = np.zeros(xp.shape)
    n_idx, c_idx = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    for i in range(P):
        for j in range(Q):
            if kind == "max":
                win = xp[:, :, i * s:i * s + k, j * s:j * s + k].reshape(N, C, k * k)
                first = win.argmax(axis=2)  # the first maximum in row-major window order
                np.add.at(dxp, (n_idx, c_idx, i * s + first // k, j * s + first % k), dy[:, :, i, j])
            else:
                dxp[:, :, i * s:i * s + k, j * s:j * s + k] += dy[:, :, i, j][:, :, None, None] / (k * k)
    return dxp[:, :, p:p + H, p:p + W]


def pool_cases(g):
    cases = []
    for kind in ("max", "avg"):
        for (N, C, H, W, k, s, p) in [(2, 3, 7, 7, 3, 2, 1), (1, 2, 8, 6, 2, 2, 0), (2, 2, 5, 6, 3, 1, 1), (2, 4, 4, 4, 4, 1, 0)]:
            P, Q = conv_out(H, k, s, p), conv_out(W, k, s, p)
            params = {"kind": kind, "kh": k, "kw": k, "stride_h": s, "stride_w": s, "pad_h": p, "pad_w": p}
            tag = "%s %dx%dx%dx%d k%d s%d p%d" % (kind, N, C, H, W, k, s, p)
            x = g.uniform((N, C, H, W))
            if kind == "max" and k == 3 and s == 2:
                x = f32(np.round(x * 2))  # ties: the first maximum of the window takes the gradient
                tag += " ties"
            dy = g.uniform((N, C, P, Q))
            cases.append({"name": "np pool2d " + tag, "op": "pool2d", "params": params, "src": [operand(x)],
                          "dst": [out(pool_fwd(x, kind, k, s, p))], "tolerance": {"red": k * k}})
            cases.append({"name": "np pool2d_bwd " + tag, "op": "pool2d_bwd", "params": params,
                          "src": [operand(dy), operand(x)], "dst": [out(pool_bwd(dy, x, kind, k, s, p))],
                          "tolerance": {"red": k * k}})
    return cases


# ---- batch normalisation -------------------------------------------------------------------------

def bn_axes(x):
    return (0, 2, 3) if x.ndim == 4 else (0,)


def bshape(v, x):
    return v.reshape((1, -1, 1, 1)) if x.ndim == 4 else v.reshape((1, -1))


def bn_cases(g):
    cases = []
    eps, mom = 1e-5, 0.1
    for shape in [(4, 3, 5, 3), (3, 5, 2, 2), (6, 7), (4, 3)]:
        C = shape[1]
        M = int(np.prod(shape)) // C
        tag = "%dd %s" % (2 if len(shape) == 4 else 1, "x".join(map(str, shape)))
        x = g.uniform(shape, 0.5, 2.5)
        gamma, beta = g.uniform((C,), 0.5, 1.5), g.uniform((C,), -0.5, 0.5)
        rm, rv = g.uniform((C,), 0.5, 2.5), g.uniform((C,), 0.2, 0.6)
        xd = x.astype(np.float64)
        mean = xd.mean(axis=bn_axes(x))
        var = xd.var(axis=bn_axes(x))
        invstd = 1.0 / np.sqrt(var + eps)
        y = (xd - bshape(mean, x)) * bshape(invstd * gamma, x) + bshape(beta.astype(np.float64), x)
        srcs = [operand(x), operand(gamma), operand(beta), operand(rm), operand(rv)]
        srcs[3]["expected"] = [num(v) for v in (1 - mom) * rm + mom * mean]
        srcs[4]["expected"] = [num(v) for v in (1 - mom) * rv + mom * var * M / (M - 1)]
        cases.append({"name": "np batchnorm train " + tag, "op": "batchnorm",
                      "params": {"training": 1, "momentum": mom, "eps": eps}, "src": srcs,
                      "dst": [out(y), out(mean), out(invstd)], "tolerance": {"red": M}})
        rinv = 1.0 / np.sqrt(rv.astype(np.float64) + eps)
        ye = (xd - bshape(rm, x)) * bshape(rinv * gamma, x) + bshape(beta.astype(np.float64), x)
        cases.append({"name": "np batchnorm eval " + tag, "op": "batchnorm",
                      "params": {"training": 0, "momentum": mom, "eps": eps},
                      "src": [operand(x), operand(gamma), operand(beta), operand(rm), operand(rv)],
                      "dst": [out(ye), out(rm), out(rinv)]})
        # backward: statistics as the forward saved them (float32)
        dy = g.uniform(shape)
        for training in (1, 0):
            sm, si = (f32(mean), f32(invstd)) if training else (rm, f32(rinv))
            smd, sid = sm.astype(np.float64), si.astype(np.float64)
            xhat = (xd - bshape(smd, x)) * bshape(sid, x)
            dyd = dy.astype(np.float64)
            dbeta = dyd.sum(axis=bn_axes(x))
            dgamma = (dyd * xhat).sum(axis=bn_axes(x))
            if training:
                dx = bshape(gamma * sid / M, x) * (M * dyd - bshape(dbeta, x) - xhat * bshape(dgamma, x))
            else:
                dx = dyd * bshape(gamma * sid, x)
            cases.append({"name": "np batchnorm_bwd %s %s" % ("train" if training else "frozen", tag),
                          "op": "batchnorm_bwd", "params": {"training": training, "eps": eps},
                          "src": [operand(dy), operand(x), operand(gamma), operand(sm), operand(si)],
                          "dst": [out(dx), out(dgamma), out(dbeta)], "tolerance": {"red": M}})
    return cases + sync_bn_cases(Gen(g.seed + 32))


def sync_bn_cases(g):
    """The synchronised batch norm's four ops (appended to batchnorm.json from a stream of their own, so the
    other cases keep their values). One rank, or this rank of two: the other rank's x2 makes the whole batch
    whose statistics and sums BN_APPLY and BN_BWD_APPLY read."""
    cases = []
    eps, mom = 1e-5, 0.1
    for shape, ranks in [((4, 3, 5, 3), 1), ((4, 3, 5, 3), 2), ((6, 7), 2), ((3, 5, 2, 2), 1)]:
        C = shape[1]
        M = int(np.prod(shape)) // C
        count = M * ranks
        tag = "%dd %s ranks%d" % (2 if len(shape) == 4 else 1, "x".join(map(str, shape)), ranks)
        x = g.uniform(shape, 0.5, 2.5)
        whole = [x] + [g.uniform(shape, 0.5, 2.5) for _ in range(ranks - 1)]
        gamma, beta = g.uniform((C,), 0.5, 1.5), g.uniform((C,), -0.5, 0.5)
        rm, rv = g.uniform((C,), 0.5, 2.5), g.uniform((C,), 0.2, 0.6)
        dys = [g.uniform(shape) for _ in range(ranks)]
        xd = x.astype(np.float64)
        # BN_STATS: this rank's mean and biased variance
        stats = np.stack([xd.mean(axis=bn_axes(x)), xd.var(axis=bn_axes(x))])
        cases.append({"name": "np bn_stats " + tag, "op": "bn_stats", "params": {"eps": eps},
                      "src": [operand(x)], "dst": [out(stats)], "tolerance": {"red": M}})
        # BN_APPLY with the whole batch's statistics (as the host combines them), rounded to float32
        wd = np.concatenate([w.astype(np.float64) for w in whole])
        gstats = f32(np.stack([wd.mean(axis=bn_axes(x)), wd.var(axis=bn_axes(x))]))
        mean, var = gstats[0].astype(np.float64), gstats[1].astype(np.float64)
        invstd = 1.0 / np.sqrt(var + eps)
        y = (xd - bshape(mean, x)) * bshape(invstd * gamma, x) + bshape(beta.astype(np.float64), x)
        params = {"momentum": mom, "eps": eps, "count": count}
        cases.append({"name": "np bn_apply " + tag, "op": "bn_apply", "params": params,
                      "src": [operand(x), operand(gamma), operand(beta), operand(gstats)],
                      "dst": [out(y), out((1 - mom) * rm + mom * mean, init=rm),
                              out((1 - mom) * rv + mom * var * count / (count - 1), init=rv)],
                      "tolerance": {"red": M}})
        # BN_BWD_STATS: this rank's sums (and dgamma, dbeta); BN_BWD_APPLY with the sums over the ranks
        inv32 = f32(invstd).astype(np.float64)

        def sums_of(xr, dyr):
            xhat = (xr.astype(np.float64) - bshape(mean, x)) * bshape(inv32, x)
            dyd = dyr.astype(np.float64)
            return np.stack([(dyd * xhat).sum(axis=bn_axes(x)), dyd.sum(axis=bn_axes(x))])

        mine = sums_of(x, dys[0])
        cases.append({"name": "np bn_bwd_stats " + tag, "op": "bn_bwd_stats", "params": {"eps": eps},
                      "src": [operand(dys[0]), operand(x), operand(gstats)],
                      "dst": [out(mine[0]), out(mine[1]), out(mine)], "tolerance": {"red": M}})
        total = f32(sum(sums_of(w, d) for w, d in zip(whole, dys)))
        tot = total.astype(np.float64)
        xhat = (xd - bshape(mean, x)) * bshape(inv32, x)
        dx = bshape(gamma * inv32 / count, x) * (count * dys[0].astype(np.float64) - bshape(tot[1], x) -
                                                 xhat * bshape(tot[0], x))
        cases.append({"name": "np bn_bwd_apply " + tag, "op": "bn_bwd_apply", "params": {"eps": eps, "count": count},
                      "src": [operand(dys[0]), operand(x), operand(gamma), operand(gstats), operand(total)],
                      "dst": [out(dx)], "tolerance": {"red": count}})
    return cases


# ---- softmax cross-entropy ---------------------------------------------------------------------

def ce_cases(g):
    cases = []
    for (N, K, e, rng) in [(5, 7, 0.0, 3), (5, 7, 0.1, 3), (8, 10, 0.2, 8), (3, 1, 0.0, 1), (4, 6, 0.1, 40)]:
        z = g.uniform((N, K), -rng, rng)
        lab = g.rng.integers(0, K, size=N).astype(np.int32)
        zd = z.astype(np.float64)
        zmax = zd.max(axis=1, keepdims=True)
        logp = zd - zmax - np.log(np.exp(zd - zmax).sum(axis=1, keepdims=True))
        per = (1 - e) * -logp[np.arange(N), lab] + e * (-logp).mean(axis=1)
        correct = float((z.argmax(axis=1) == lab).sum())
        m0 = f32([1.5, 2.0, 3.0])
        metrics = m0.astype(np.float64) + np.array([per.sum(), correct, N])
        tag = "%dx%d ls%g range%g" % (N, K, e, rng)
        cases.append({"name": "np softmax_ce " + tag, "op": "softmax_ce", "params": {"label_smoothing": e},
                      "src": [operand(z), operand(lab, "i32")],
                      "dst": [out(np.array([per.mean()])), out(metrics, init=m0)], "tolerance": {"red": N * K}})
        target = (1 - e) * np.eye(K)[lab] + e / K
        scale = 1.0 / N
        grad = scale * (np.exp(logp) - target)
        cases.append({"name": "np softmax_ce_bwd " + tag, "op": "softmax_ce_bwd",
                      "params": {"label_smoothing": e, "scale": float(np.float32(scale))},
                      "src": [operand(z), operand(lab, "i32")], "dst": [out(grad)], "tolerance": {"red": K}})
    return cases


def ignored_labels(g, shape, K, frac):
    """Class ids in [0,K), a fraction frac of them replaced by ignored / out-of-range ones."""
    lab = g.rng.integers(0, K, size=shape)
    bad = g.rng.choice(np.array([255, K, -1, -2147483648]), size=shape)
    return np.where(g.rng.uniform(size=shape) < frac, bad, lab).astype(np.int32)


def ce_ignore_cases(g):
    """Per-pixel softmax cross-entropy ([N,K,H,W], classes on axis 1) and [N,K], with labels outside [0,K)
    ignored (PyTorch's ignore_index): the loss is the mean over the counted rows, the gradient that of
    their sum times scale = 1/(N*H*W), zero on ignored rows; metrics count only the counted rows."""
    cases = []
    for (shape, e, frac) in [((2, 5, 3, 4), 0.0, 0.3), ((2, 5, 3, 4), 0.1, 0.3), ((1, 21, 4, 4), 0.0, 0.25),
                             ((3, 6, 5, 3), 0.2, 0.2), ((2, 4, 2, 3), 0.0, 1.0), ((1, 1, 3, 2), 0.0, 0.5),
                             ((5, 7), 0.1, 0.4), ((6, 3), 0.0, 0.0)]:
        N, K = shape[0], shape[1]
        S = int(np.prod(shape[2:])) if len(shape) == 4 else 1
        z = g.uniform(shape, -4, 4)
        lab = ignored_labels(g, (N,) + tuple(shape[2:]), K, frac)
        rows = np.moveaxis(z.astype(np.float64), 1, -1).reshape(-1, K)  # row r = n*S + s
        y = lab.reshape(-1).astype(np.int64)
        keep = (y >= 0) & (y < K)
        safe = np.where(keep, y, 0)
        zmax = rows.max(axis=1, keepdims=True)
        logp = rows - zmax - np.log(np.exp(rows - zmax).sum(axis=1, keepdims=True))
        per = np.where(keep, (1 - e) * -logp[np.arange(len(y)), safe] + e * (-logp).mean(axis=1), 0.0)
        counted = int(keep.sum())
        pred = np.moveaxis(z, 1, -1).reshape(-1, K).argmax(axis=1)  # the first maximum, on the f32 values
        correct = float(((pred == y) & keep).sum())
        m0 = f32([2.0, 1.0, 4.0])
        metrics = m0.astype(np.float64) + np.array([per.sum(), correct, counted])
        tag = "%s ls%g ignored%g" % ("x".join(map(str, shape)), e, frac)
        params = {"label_smoothing": e, "ignore": 1}
        cases.append({"name": "np softmax_ce ignore " + tag, "op": "softmax_ce", "params": params,
                      "src": [operand(z), operand(lab, "i32")],
                      "dst": [out(np.array([per.sum() / max(counted, 1)])), out(metrics, init=m0)],
                      "tolerance": {"red": N * S * K}})
        scale = 1.0 / (N * S)
        target = (1 - e) * np.eye(K)[safe] + e / K
        grad = np.where(keep[:, None], scale * (np.exp(logp) - target), 0.0)
        grad = np.moveaxis(grad.reshape((N,) + tuple(shape[2:]) + (K,)), -1, 1)
        cases.append({"name": "np softmax_ce_bwd ignore " + tag, "op": "softmax_ce_bwd",
                      "params": dict(params, scale=float(np.float32(scale))),
                      "src": [operand(z), operand(lab, "i32")], "dst": [out(grad)], "tolerance": {"red": K}})
    return cases


def confusion_cases(g):
    """CONFUSION: counts[t*(K+1) + q] += 1 with t, q the truth / prediction, K when outside [0,K),
    accumulated onto the counts given."""
    cases = []
    for (K, pshape, tshape, vals, frac, start) in [(1, (7,), (7,), 1, 0.3, False), (6, (2, 5, 3), (30,), 6, 0.2, True),
                                                   (11, (1, 9, 8), (1, 9, 8), 12, 0.1, True),
                                                   (21, (2, 16, 16), (512,), 21, 0.25, True),
                                                   (3, (4, 4), (16,), 3, 1.0, True)]:
        pred = ignored_labels(g, pshape, vals, frac)
        truth = ignored_labels(g, tshape, vals, frac)
        c0 = g.rng.integers(0, 1000, size=(K + 1, K + 1)) if start else np.zeros((K + 1, K + 1), np.int64)
        t = truth.reshape(-1).astype(np.int64)
        q = pred.reshape(-1).astype(np.int64)
        t = np.where((t >= 0) & (t < K), t, K)
        q = np.where((q >= 0) & (q < K), q, K)
        counts = c0.copy()
        np.add.at(counts, (t, q), 1)
        dst = operand(c0, "i32")
        dst["expected"] = [int(v) for v in counts.ravel()]
        tag = "K%d %s vals%d outside%g%s" % (K, "x".join(map(str, pshape)), vals, frac, " accumulate" if start else "")
        cases.append({"name": "np confusion " + tag, "op": "confusion",
                      "src": [operand(pred, "i32"), operand(truth, "i32")], "dst": [dst]})
    return cases


# ---- activations ---------------------------------------------------------------------------------

def gelu_phi_cdf(x):
    """Phi(x) = (1 + erf(x / sqrt 2)) / 2, in float64 (math.erf: NumPy has no erf)."""
    return 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def act_fwd(kind, x, alpha):
    x = x.astype(np.float64)
    if kind == "gelu":
        return x * gelu_phi_cdf(x)
    if kind == "relu":
        return np.maximum(x, 0)
    if kind == "leaky_relu":
        return np.where(x > 0, x, alpha * x)
    return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(x) - 1))


def act_grad(kind, x, alpha):
    """The true derivative at x (the op gets y = f(x), or x itself for gelu, and must agree)."""
    x = x.astype(np.float64)
    if kind == "gelu":
        return gelu_phi_cdf(x) + x * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    if kind == "relu":
        return (x > 0).astype(np.float64)
    if kind == "leaky_relu":
        return np.where(x > 0, 1.0, alpha)
    return SELU_SCALE * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(x))


def act_cases(g):
    cases = []
    for kind, alpha in (("relu", 0.0), ("leaky_relu", 0.01), ("leaky_relu", 0.2), ("selu", 0.0)):
        for shape in [(1,), (5, 7), (2, 3, 5, 3)]:
            x = g.away_from_zero(shape)
            params = {"kind": kind, "alpha": alpha}
            tag = "%s a%g %s" % (kind, alpha, "x".join(map(str, shape)))
            y = act_fwd(kind, x, alpha)
            cases.append({"name": "np act " + tag, "op": "act", "params": params, "src": [operand(x)], "dst": [out(y)]})
            dy = g.uniform(shape)
            cases.append({"name": "np act_bwd " + tag, "op": "act_bwd", "params": params,
                          "src": [operand(dy), operand(f32(y))], "dst": [out(dy * act_grad(kind, x, alpha))]})
    # gelu last, so that the cases above keep their random values. Its ACT_BWD takes the forward
    # INPUT x (gelu is not monotonic: y does not tell x); inputs span its minimum at -0.75 and the tails.
    # In float32, 1 + erf(x / sqrt 2) cancels in the left tail (a few 1e-6 relative at x = -3, as in
    # torch's own float32 gelu): the normalised MSE bound is the GEMMs' 1e-9, not the 1e-12 of act.
    for shape in [(1,), (5, 7), (2, 3, 5, 3)]:
        x = g.uniform(shape, -4.0, 4.0)
        params = {"kind": "gelu", "alpha": 0.0}
        tag = "gelu %s" % "x".join(map(str, shape))
        cases.append({"name": "np act " + tag, "op": "act", "params": params, "src": [operand(x)],
                      "dst": [out(act_fwd("gelu", x, 0.0))], "tolerance": {"nmse": 1e-9}})
        dy = g.uniform(shape)
        cases.append({"name": "np act_bwd " + tag, "op": "act_bwd", "params": params,
                      "src": [operand(dy), operand(x)], "dst": [out(dy * act_grad("gelu", x, 0.0))],
                      "tolerance": {"nmse": 1e-9}})
    return cases


# ---- Adam / AdamW, as torch.optim.Adam computes one step ---------------------------------------
# torch 2.x, the single-tensor path torch takes for CPU tensors (foreach and fused off), with the
# Python-float scalars of torch/optim/adam.py:
#   step += 1
#   AdamW (decoupled):  param.mul_(1 - lr * weight_decay)
#   Adam, weight_decay: grad = grad.add(param, alpha=weight_decay)
#   exp_avg.lerp_(grad, 1 - beta1)
#   exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
#   bias_correction1 = 1 - beta1 ** step; bias_correction2 = 1 - beta2 ** step
#   step_size = lr / bias_correction1; bias_correction2_sqrt = sqrt(bias_correction2)
#   denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
#   param.addcdiv_(exp_avg, denom, value=-step_size)
# A Python float meeting a float32 tensor is rounded to float32 first. torch's CPU kernels (2.5, checked
# bit for bit on every element of odd and long tensors) compute add-with-alpha, lerp and addcmul with one
# fused multiply-add each, mul_, sqrt, the division and addcdiv with a rounding per operation:
#   grad.add(param, alpha=a)  fma(a, param, grad)
#   lerp_(g, w)               |w| < 0.5: fma(w, g - m, m);  else fma(-(1 - w), g - m, g)
#   mul_(b).addcmul_(g, g, s) fma(s * g, g, v * b)
#   addcdiv_(m, d, value=s)   p + (s * m) / d
# torch's vectorised sqrt is not correctly rounded (1 ulp off on about one element in seven); this
# emulation's is, the one difference from torch that remains.

def fma32(a, b, c):
    """f32(a * b + c) rounded once, as C's fmaf: a product of two float32 is exact in float64; the
    float64 sum's rounding error (two-sum) settles the one case where rounding twice goes wrong, a
    float64 sum exactly halfway between two float32."""
    a, b, c = (f32(x).astype(np.float64) for x in (a, b, c))
    ab = a * b
    s = ab + c
    bb = s - ab
    err = (ab - (s - bb)) + (c - bb)
    r = s.astype(np.float32)
    other = np.nextafter(r, np.where(r.astype(np.float64) < s, np.inf, -np.inf).astype(np.float32))
    tie = (s != r) & (s == (r.astype(np.float64) + other.astype(np.float64)) / 2) & (err != 0)
    return f32(np.where(tie & ((err > 0) == (other > r)), other, r))


def torch_adam_step(p, g, m, v, step, lr, beta1, beta2, eps, wd, decoupled):
    """One step of torch.optim.Adam / AdamW on float32 arrays; step is the new step count (>= 1)."""
    F = np.float32
    p, g, m, v = f32(p).copy(), f32(g).copy(), f32(m).copy(), f32(v).copy()
    if decoupled:
        p = f32(p * F(1 - lr * wd))
    elif wd != 0:
        g = fma32(F(wd), p, g)
    w = F(1 - beta1)
    if abs(float(w)) < 0.5:
        m = fma32(w, f32(g - m), m)
    else:
        m = fma32(-F(F(1) - w), f32(g - m), g)
    v = fma32(f32(F(1 - beta2) * g), g, f32(v * F(beta2)))
    bc1 = 1 - beta1 ** step
    bc2 = 1 - beta2 ** step
    step_size = lr / bc1
    bc2_sqrt = bc2 ** 0.5
    denom = f32(f32(f32(np.sqrt(v)) / F(bc2_sqrt)) + F(eps))
    p = f32(p + f32(f32(F(-step_size) * m) / denom))
    return p, m, v


def real_torch_adam_step(p, g, m, v, step, lr, beta1, beta2, eps, wd, decoupled):
    """The same step by torch.optim.Adam / AdamW itself (CPU, foreach and fused off)."""
    import torch
    param = torch.nn.Parameter(torch.from_numpy(f32(p).copy()))
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    opt = cls([param], lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=wd, foreach=False, fused=False)
    param.grad = torch.from_numpy(f32(g).copy())
    opt.state[param] = {"step": torch.tensor(float(step - 1)), "exp_avg": torch.from_numpy(f32(m).copy()),
                        "exp_avg_sq": torch.from_numpy(f32(v).copy())}
    opt.step()
    st = opt.state[param]
    return f32(param.detach().numpy()).copy(), f32(st["exp_avg"].numpy()).copy(), f32(st["exp_avg_sq"].numpy()).copy()


ADAM_STEP = {"fn": torch_adam_step, "by": "emulated in NumPy float32"}


def adam_cases(g):
    step_fn = ADAM_STEP["fn"]
    cases = []
    # (adamw, beta1, beta2, eps, weight decay, lr, first step t, steps chained from zero state (0: random state))
    runs = [(0, 0.9, 0.999, 1e-8, 0.0, 2 ** -10, 1, 1), (0, 0.9, 0.999, 1e-8, 0.0, 2 ** -10, 2, 2),
            (0, 0.9, 0.999, 1e-8, 0.01, 2 ** -7, 10, 10), (1, 0.9, 0.999, 1e-8, 0.01, 2 ** -7, 1, 1),
            (1, 0.9, 0.999, 1e-8, 0.05, 2 ** -10, 10, 10), (0, 0.9, 0.999, 1e-8, 0.0, 2 ** -10, 1000, 0),
            (1, 0.9, 0.98, 1e-6, 0.1, 2 ** -8, 1000, 0), (0, 0.3, 0.99, 1e-8, 0.0, 2 ** -9, 3, 3)]
    for (dec, b1, b2, eps, wd, lr, t, chained) in runs:
        n = 37
        p = g.uniform((n,), -1e-3, 1e-3)
        if chained:
            m, v = np.zeros(n, np.float32), np.zeros(n, np.float32)
            for k in range(1, t):
                p, m, v = step_fn(p, g.uniform((n,)), m, v, k, lr, b1, b2, eps, wd, dec)
        else:
            m, v = g.uniform((n,), -0.1, 0.1), g.uniform((n,), 0.0, 0.01)
        grad = g.uniform((n,))
        p1, m1, v1 = step_fn(p, grad, m, v, t, lr, b1, b2, eps, wd, dec)
        offset = 7 if t > 1 else 0  # the node's step_offset: ctx.step = t - 1 + offset
        cases.append({"name": "torch %s b1=%g b2=%g eps=%g wd%g lr%g t%d" % ("adamw" if dec else "adam", b1, b2, eps, wd, lr, t),
                      "op": "adam",
                      "comment": "one step of torch.optim.%s, %s" % ("AdamW" if dec else "Adam", ADAM_STEP["by"]),
                      "params": {"beta1": b1, "beta2": b2, "eps": eps, "weight_decay": wd, "decoupled": dec,
                                 "step_offset": offset},
                      "ctx": {"step": t - 1 + offset, "lr": lr},
                      "src": [operand(grad)], "dst": [out(p1, init=p), out(m1, init=m), out(v1, init=v)],
                      "tolerance": {"nmse": 1e-12, "atol": 1e-9, "rtol": 2e-6, "update": 2e-6}})
    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "cases")))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", help="write only this family (conv2d, pool2d, batchnorm, softmax_ce, act, adam, "
                    "softmax_ce_ignore, confusion)")
    ap.add_argument("--torch", action="store_true",
                    help="adam.json from the real torch.optim.Adam / AdamW when torch is importable")
    args = ap.parse_args()
    generator = {}
    if args.torch:
        try:
            import torch
        except ImportError:
            print("make_cases.py: torch is not importable: adam.json from the NumPy emulation", file=sys.stderr)
        else:
            torch.set_num_threads(1)
            ADAM_STEP["fn"] = real_torch_adam_step
            ADAM_STEP["by"] = "by torch %s on the CPU (single-tensor path)" % torch.__version__
            generator["adam"] = "; expected values by torch.optim.Adam/AdamW, torch %s, CPU" % torch.__version__
    if "adam" not in generator:
        generator["adam"] = "; expected values by the NumPy emulation of torch.optim.Adam/AdamW"
    os.makedirs(args.out, exist_ok=True)
    g = Gen(args.seed)
    families = [("conv2d", conv_cases), ("pool2d", pool_cases), ("batchnorm", bn_cases), ("softmax_ce", ce_cases),
                ("act", act_cases), ("adam", adam_cases), ("softmax_ce_ignore", ce_ignore_cases),
                ("confusion", confusion_cases)]
    total = 0
    for name, make in families:
        if name == "adam":
            g = Gen(args.seed + 16)  # its own stream: the other files stay as they were
        elif name == "softmax_ce_ignore":
            g = Gen(args.seed + 17)
        elif name == "confusion":
            g = Gen(args.seed + 18)
        cases = make(g)
        if args.only and name != args.only:
            continue
        doc = {"format": "vtrain-cases", "version": 1,
               "generator": "tools/make_cases.py (NumPy %s, seed %d%s)" % (np.__version__, args.seed, generator.get(name, "")),
               "cases": cases}
        path = os.path.join(args.out, name + ".json")
        with open(path, "w") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.write("\n")
        size = os.path.getsize(path)
        total += size
        print("%s: %d cases, %d bytes" % (path, len(cases), size))
    print("total %d bytes" % total)


if __name__ == "__main__":
    main()
