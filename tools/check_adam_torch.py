#!/usr/bin/env python3
"""Checks tests/cases/adam.json against the real torch.optim.Adam / AdamW: one step from each case's
state, the single-tensor path (foreach and fused off), on the CPU. The fixture's expected values come
from torch itself (tools/make_cases.py --only adam --torch) or, without torch, from its NumPy emulation;
this shows how far either is from the torch installed here.

usage: python3 tools/check_adam_torch.py [tests/cases/adam.json]     (needs: pip install numpy torch)

Prints, per case, the largest difference in units of the last place (ULP) of parameter, exp_avg and
exp_avg_sq, the largest relative difference, and that of the update itself with the conformance rule of
docs/conformance.md (item 9: |du_got - du_ref| <= update * |du_ref| + ulp(|after|)); exits 1 when any
case is outside its tolerance.
"""
import json
import os
import sys

try:
    import numpy as np
    import torch
except ImportError as e:
    sys.exit("check_adam_torch.py needs NumPy and torch (%s): pip install numpy torch" % e)


def ulps(a, b):
    """The largest distance between a and b in float32 steps (signs handled: -0 and +0 are 0 apart)."""
    ia = np.asarray(a, np.float32).view(np.int32).astype(np.int64)
    ib = np.asarray(b, np.float32).view(np.int32).astype(np.int64)
    ia = np.where(ia < 0, -(ia & 0x7FFFFFFF), ia)
    ib = np.where(ib < 0, -(ib & 0x7FFFFFFF), ib)
    return int(np.max(np.abs(ia - ib))) if ia.size else 0


def torch_step(c):
    """The case's step by torch.optim.Adam / AdamW: the new parameter, exp_avg and exp_avg_sq."""
    p = c["params"]
    t = c["ctx"]["step"] - p["step_offset"] + 1
    grad, (p0, m0, v0) = np.array(c["src"][0]["data"], np.float32), (np.array(d["data"], np.float32) for d in c["dst"])
    param = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    cls = torch.optim.AdamW if p["decoupled"] else torch.optim.Adam
    opt = cls([param], lr=c["ctx"]["lr"], betas=(p["beta1"], p["beta2"]), eps=p["eps"],
              weight_decay=p["weight_decay"], foreach=False, fused=False)
    param.grad = torch.from_numpy(grad.copy())
    opt.state[param] = {"step": torch.tensor(float(t - 1)), "exp_avg": torch.from_numpy(m0.copy()),
                        "exp_avg_sq": torch.from_numpy(v0.copy())}
    opt.step()
    st = opt.state[param]
    return [param.detach().numpy().copy(), st["exp_avg"].numpy().copy(), st["exp_avg_sq"].numpy().copy()]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "tests", "cases", "adam.json")
    with open(path) as f:
        doc = json.load(f)
    torch.set_num_threads(1)
    bad = 0
    for c in doc["cases"]:
        got = torch_step(c)
        exp = [np.array(d["expected"], np.float32) for d in c["dst"]]
        p0 = np.array(c["dst"][0]["data"], np.float32)
        tol = c.get("tolerance", {})
        rtol, utol = tol.get("rtol", 2e-6), tol.get("update", 2e-6)
        rel = max(float(np.max(np.abs(g - e) / np.maximum(np.abs(e), 1e-30))) for g, e in zip(got, exp))
        du_got, du_ref = (got[0] - p0).astype(np.float64), (exp[0] - p0).astype(np.float64)
        slack = np.spacing(np.abs(exp[0])).astype(np.float64)  # the rounding of the stored parameter
        upd = float(np.max(np.maximum(np.abs(du_got - du_ref) - slack, 0) / np.maximum(np.abs(du_ref), 1e-30)))
        ok = rel <= rtol and upd <= utol
        bad += not ok
        print("%-62s ulp p/m/v %2d/%d/%d  rel %.2e  update rel %.2e  %s" %
              (c["name"], ulps(got[0], exp[0]), ulps(got[1], exp[1]), ulps(got[2], exp[2]), rel, upd,
               "ok" if ok else "FAIL"))
    print("torch %s: %d of %d cases within tolerance" % (torch.__version__, len(doc["cases"]) - bad, len(doc["cases"])))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
