#!/usr/bin/env python3
"""PyTorch reference for vtrain's eight problems: the same models, hyper-parameters, data pipeline and
initialisation, to benchmark (`--bench`, `--ops`: the same JSON as `vtrain bench`) and to train
(`--train --data DIR`: metrics.jsonl / summary.json / config.json like a vtrain run folder).

    pip install torch numpy pillow         (pillow only for image-folder data)
    python3 tools/pytorch_ref.py --bench --problem all --json pytorch.json
    python3 tools/pytorch_ref.py --ops --json pytorch_ops.json
    python3 tools/pytorch_ref.py --train --problem cnn-pool --data DIR --out runs/torch-cnn-pool
    python3 tools/pytorch_ref.py --print-problems     (the defaults in use; needs no torch)

The problems' defaults (optimizer, lr, momentum, weight decay, schedule, epochs, batch, augmentation,
dropout) are vtrain's own, read from `vtrain list --json` (--vtrain PATH, default build/tools/vtrain),
so reference runs are like for like.
    vtrain report --bench vtrain.json --bench pytorch.json --out report
"""
import argparse
import datetime
import glob
import json
import math
import os
import platform
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import problems_table  # noqa: E402  (torch-free: the defaults come from `vtrain list --json`)

# The problems' defaults, vtrain's own (--vtrain, default build/tools/vtrain): filled in by main() as
# (id, name, optimizer, lr, momentum, weight decay, cosine T_max or 0, epochs, batch, augment), with
# nesterov and dropout in EXTRA by id.
PROBLEMS = []
EXTRA = {}


def set_problems(vtrain):
    global PROBLEMS, EXTRA
    table = problems_table.load(vtrain)
    PROBLEMS = [problems_table.as_tuple(p) for p in table]
    EXTRA = {p["id"]: {"nesterov": bool(p["nesterov"]), "dropout": p["dropout"]} for p in table}


def problems_as_json():
    """The defaults this script trains with, in vtrain's field names (checked against vtrain by ctest)."""
    return [{"id": t[0], "name": t[1], "optimizer": t[2], "lr": t[3], "momentum": t[4], "weight_decay": t[5],
             "nesterov": EXTRA[t[0]]["nesterov"], "schedule": ("cosine:%d" % t[6]) if t[6] else "constant",
             "epochs": t[7], "batch_size": t[8], "augment": t[9], "dropout": EXTRA[t[0]]["dropout"]} for t in PROBLEMS]


def vtrain_arg(argv):
    for i, a in enumerate(argv):
        if a == "--vtrain" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--vtrain="):
            return a[len("--vtrain="):]
    return problems_table.default_vtrain()


if __name__ == "__main__" and "--print-problems" in sys.argv[1:]:
    set_problems(vtrain_arg(sys.argv[1:]))
    print(json.dumps(problems_as_json()))
    sys.exit(0)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def find_problem(key):
    for p in PROBLEMS:
        if key == str(p[0]) or key == p[1]:
            return p
    raise SystemExit("pytorch_ref: unknown problem %r (1..8, a name such as cnn-pool, or all)" % key)


# ---------------------------------------------------------------- models (PyTorch default init)

def cnn_features(pool):
    if pool:
        return nn.Sequential(nn.Conv2d(3, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(16, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
    return nn.Sequential(nn.Conv2d(3, 16, 5, stride=2, padding=2), nn.ReLU(),
                         nn.Conv2d(16, 16, 5, stride=2, padding=2), nn.ReLU(), nn.Flatten())


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + idt)


class ResNet18(nn.Module):
    """torchvision.models.resnet18 (same parameter names, ImageNet stem), written out."""

    def __init__(self, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        chans = [64, 128, 256, 512]
        cin = 64
        for i, c in enumerate(chans):
            stride = 1 if i == 0 else 2
            setattr(self, "layer%d" % (i + 1), nn.Sequential(BasicBlock(cin, c, stride), BasicBlock(c, c, 1)))
            cin = c
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)
        # torchvision's initialisation
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build_model(pid, k, weights=None):
    if pid == 1:
        return nn.Sequential(nn.Flatten(), nn.Linear(3072, k))
    if pid == 2:
        return nn.Sequential(nn.Flatten(), nn.Linear(3072, 1024), nn.ReLU(), nn.Linear(1024, k))
    if pid == 3:
        return nn.Sequential(nn.Flatten(), nn.Linear(3072, 1024), nn.ReLU(), nn.Linear(1024, 512), nn.ReLU(),
                             nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, k))
    if pid == 4:
        return nn.Sequential(cnn_features(False), nn.Linear(1024, k))
    if pid == 5:
        return nn.Sequential(cnn_features(True), nn.Linear(1024, k))
    if pid == 6:
        return nn.Sequential(cnn_features(True), nn.Linear(1024, 512), nn.ReLU(), nn.Dropout(EXTRA[6]["dropout"]),
                             nn.Linear(512, k))
    m = ResNet18(k)
    if pid == 7 and weights:
        sd = torch.load(weights, map_location="cpu")
        sd = {n: t for n, t in sd.items() if not n.startswith("fc.")}  # new head
        missing, unexpected = m.load_state_dict(sd, strict=False)
        if unexpected or [n for n in missing if not n.startswith("fc.")]:
            raise SystemExit("pytorch_ref: %s does not hold torchvision resnet18 weights" % weights)
    return m


def make_optimizer(prob, model):
    pid, _, opt, lr, mom, wd, _, _, _, _ = prob
    if opt == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=mom, weight_decay=wd,
                               nesterov=EXTRA[pid]["nesterov"])
    if opt == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    if opt == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
    raise SystemExit("pytorch_ref: optimizer %r has no PyTorch equivalent here" % opt)


# ---------------------------------------------------------------- data pipeline

def prep_batch(images_u8, labels, idx, augment, device):
    """uint8 NCHW gather -> [0,1] -> crop(pad 4, zero) + flip -> normalise, as vtrain's BATCH_PREP."""
    x = images_u8[idx].to(device=device, dtype=torch.float32).div_(255.0)
    y = labels[idx].to(device)
    if augment:
        b = x.shape[0]
        h, w = x.shape[2], x.shape[3]
        xp = F.pad(x, (4, 4, 4, 4))
        oy = torch.randint(0, 9, (b,), device=device)
        ox = torch.randint(0, 9, (b,), device=device)
        rows = (oy[:, None] + torch.arange(h, device=device))[:, None, :, None]
        cols = (ox[:, None] + torch.arange(w, device=device))[:, None, None, :]
        bi = torch.arange(b, device=device)[:, None, None, None]
        ci = torch.arange(x.shape[1], device=device)[None, :, None, None]
        x = xp[bi, ci, rows, cols]
        flip = torch.rand(b, device=device) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    return (x - mean) / std, y


def load_image_folder(root, split):
    from PIL import Image  # only this layout needs pillow

    classes = sorted(d for d in os.listdir(os.path.join(root, split)) if os.path.isdir(os.path.join(root, split, d)))
    xs, ys = [], []
    for ci, c in enumerate(classes):
        for f in sorted(glob.glob(os.path.join(root, split, c, "*"))):
            if f.lower().endswith((".png", ".jpg", ".jpeg")):
                xs.append(np.asarray(Image.open(f).convert("RGB"), dtype=np.uint8))
                ys.append(ci)
    if not xs:
        raise SystemExit("pytorch_ref: no images under %s/%s/<class>/" % (root, split))
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor(ys, dtype=torch.long), len(classes)


def load_cifar_binary(root, split):
    """CIFAR-100 (train.bin/test.bin, coarse+fine label bytes) or CIFAR-10 (data_batch_N.bin, test_batch.bin)."""
    c100 = os.path.join(root, "train.bin" if split == "train" else "test.bin")
    if os.path.exists(c100):
        raw = np.fromfile(c100, dtype=np.uint8).reshape(-1, 2 + 3072)
        return torch.from_numpy(raw[:, 2:].reshape(-1, 3, 32, 32).copy()), torch.from_numpy(raw[:, 1].astype(np.int64)), 100
    files = sorted(glob.glob(os.path.join(root, "data_batch_*.bin"))) if split == "train" else [os.path.join(root, "test_batch.bin")]
    if not files or not os.path.exists(files[0]):
        raise SystemExit("pytorch_ref: %s holds neither CIFAR binary files nor train/ and test/ image folders" % root)
    raw = np.concatenate([np.fromfile(f, dtype=np.uint8).reshape(-1, 1 + 3072) for f in files])
    return torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy()), torch.from_numpy(raw[:, 0].astype(np.int64)), 10


def load_data(root):
    if os.path.isdir(os.path.join(root, "train")) and os.path.isdir(os.path.join(root, "test")):
        xtr, ytr, k = load_image_folder(root, "train")
        xte, yte, _ = load_image_folder(root, "test")
    else:
        xtr, ytr, k = load_cifar_binary(root, "train")
        xte, yte, _ = load_cifar_binary(root, "test")
    return xtr, ytr, xte, yte, k


# ---------------------------------------------------------------- FLOP count (forward hooks)

def gemm_gflop_per_step(model, x):
    """GEMM/conv FLOPs of one training step: forward x3 (forward, backward-data, backward-weight)."""
    total = [0.0]

    def hook(m, inp, out):
        if isinstance(m, nn.Linear):
            total[0] += 2.0 * out.numel() * m.in_features
        elif isinstance(m, nn.Conv2d):
            total[0] += 2.0 * out.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1]

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    with torch.no_grad():
        model(x)
    for h in hs:
        h.remove()
    return 3.0 * total[0] * 1e-9


# ---------------------------------------------------------------- benchmarks

def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def now_ms():
    return time.perf_counter() * 1e3


def bench_problem(prob, k, batch, warmup, repeats, device):
    pid = prob[0]
    torch.manual_seed(0)
    model = build_model(pid, k).to(device)
    opt = make_optimizer(prob, model)
    model.train()
    # Synthetic data resident in memory, as vtrain's step benchmark: a few batches' worth.
    n = batch * 4
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, k, (n,))
    if device.type == "cuda":
        images, labels = images.to(device), labels.to(device)
    phases = {"data": [], "fwd": [], "bwd": [], "opt": [], "step": []}
    for it in range(warmup + repeats):
        idx = torch.randint(0, n, (batch,), device=images.device)
        t0 = now_ms()
        x, y = prep_batch(images, labels, idx, prob[9], device)
        sync(device)
        t1 = now_ms()
        loss = F.cross_entropy(model(x), y)
        sync(device)
        t2 = now_ms()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        sync(device)
        t3 = now_ms()
        opt.step()
        sync(device)
        t4 = now_ms()
        if it >= warmup:
            for key, v in zip(("data", "fwd", "bwd", "opt", "step"), (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
                phases[key].append(v)
    med = {key: statistics.median(v) for key, v in phases.items()}
    x, _ = prep_batch(images, labels, torch.arange(batch, device=images.device), False, device)
    return {
        "problem": str(pid), "name": prob[1], "batch": batch, "status": "ok",
        "step_ms_min": min(phases["step"]), "step_ms_median": med["step"], "step_ms_max": max(phases["step"]),
        "images_per_s": batch / (med["step"] * 1e-3),
        "data_ms": med["data"], "fwd_ms": med["fwd"], "bwd_ms": med["bwd"], "opt_ms": med["opt"],
        "gemm_gflop": gemm_gflop_per_step(model, x),
        # not observable from PyTorch's eager mode
        "dispatches": None, "uploads": None, "downloads": None, "syncs": None,
    }


def op_cases(quick):
    """The same cases, names and shapes as `vtrain bench --ops` (tools/bench_ops.c)."""
    big, b, fin, hid, cls = (128, 8, 768, 256, 100) if quick else (1024, 64, 3072, 1024, 100)
    cases = []

    def gemm(role, m, n_, k_, ta, tb):
        cases.append(dict(name="gemm " + role, shape="M=%d N=%d K=%d %s%s" % (m, n_, k_, "T" if ta else "N", "T" if tb else "N"),
                          kind="compute", op="matmul", M=m, N=n_, K=k_, ta=ta, tb=tb))

    gemm("%d^3" % big, big, big, big, 0, 0)
    gemm("mlp fc1 fwd", b, hid, fin, 0, 1)
    gemm("mlp fc1 dW", hid, fin, b, 1, 0)
    gemm("mlp fc1 dx", b, fin, hid, 0, 0)
    gemm("mlp fc2 fwd", b, cls, hid, 0, 1)
    gemm("mlp fc2 dW", cls, hid, b, 1, 0)
    gemm("mlp fc2 dx", b, hid, cls, 0, 0)
    nb = 2 if quick else 128
    convs = [("conv1 7x7 s2", 3, 32, 64, 7, 2, 3), ("layer1 3x3", 64, 8, 64, 3, 1, 1),
             ("layer2.0 3x3 s2", 64, 8, 128, 3, 2, 1), ("layer2 3x3", 128, 4, 128, 3, 1, 1),
             ("layer2.0 ds 1x1 s2", 64, 8, 128, 1, 2, 0), ("layer3.0 3x3 s2", 128, 4, 256, 3, 2, 1),
             ("layer3 3x3", 256, 2, 256, 3, 1, 1), ("layer3.0 ds 1x1 s2", 128, 4, 256, 1, 2, 0),
             ("layer4.0 3x3 s2", 256, 2, 512, 3, 2, 1), ("layer4 3x3", 512, 1, 512, 3, 1, 1),
             ("layer4.0 ds 1x1 s2", 256, 2, 512, 1, 2, 0)]
    for role, c, h, k, r, s, p in convs:
        for what in ("fwd", "bwd-data", "bwd-weight"):
            cases.append(dict(name="conv %s %s" % (role, what),
                              shape="N%d %d->%d %dx%d s%d p%d on %dx%d" % (nb, c, k, r, r, s, p, h, h),
                              kind="compute", op="conv2d:" + what, N=nb, C=c, H=h, K=k, R=r, s=s, p=p))
    for what in ("fwd", "bwd"):
        cases.append(dict(name="maxpool 3x3 s2 " + what, shape="[%d,64,16,16] -> 8x8" % nb, kind="memory",
                          op="pool2d:" + what, N=nb))
    for what in ("fwd", "bwd"):
        cases.append(dict(name="batchnorm " + what, shape="[%d,64,16,16] training" % nb, kind="memory",
                          op="batchnorm:" + what, N=nb))
    e = 4096 if quick else 1 << 22
    cases.append(dict(name="add", shape="%d f32" % e, kind="memory", op="add", E=e))
    return cases


def op_closure(c, device):
    """Returns (run, flop, bytes) with the same FLOP/byte conventions as vt_node_flops/vt_node_bytes."""
    g = torch.Generator().manual_seed(1)

    def rnd(*shape, positive=False):
        t = torch.rand(*shape, generator=g)
        t = t + 0.5 if positive else t * 2 - 1
        return t.to(device)

    op = c["op"]
    if op == "matmul":
        m, n_, k_ = c["M"], c["N"], c["K"]
        a = rnd(k_, m) if c["ta"] else rnd(m, k_)
        b = rnd(n_, k_) if c["tb"] else rnd(k_, n_)
        out = torch.empty(m, n_, device=device)
        aa = a.t() if c["ta"] else a
        bb = b.t() if c["tb"] else b
        return (lambda: torch.mm(aa, bb, out=out)), 2.0 * m * n_ * k_, 4.0 * (m * k_ + k_ * n_ + m * n_)
    if op.startswith("conv2d"):
        n, cc, h, k, r, s, p = c["N"], c["C"], c["H"], c["K"], c["R"], c["s"], c["p"]
        q = (h + 2 * p - r) // s + 1
        x, w, dy = rnd(n, cc, h, h), rnd(k, cc, r, r), rnd(n, k, q, q)
        flop = 2.0 * n * k * q * q * cc * r * r
        byts = 4.0 * (x.numel() + w.numel() + dy.numel())
        what = op.split(":")[1]
        if what == "fwd":
            return (lambda: F.conv2d(x, w, stride=s, padding=p)), flop, byts
        if what == "bwd-data":
            return (lambda: torch.nn.grad.conv2d_input(x.shape, w, dy, stride=s, padding=p)), flop, byts
        return (lambda: torch.nn.grad.conv2d_weight(x, w.shape, dy, stride=s, padding=p)), flop, byts
    if op.startswith("pool2d"):
        n = c["N"]
        x = rnd(n, 64, 16, 16)
        y, ind = F.max_pool2d(x, 3, 2, 1, return_indices=True)
        dy = rnd(*y.shape)
        if op.endswith("fwd"):
            return (lambda: F.max_pool2d(x, 3, 2, 1)), 9.0 * y.numel(), 4.0 * (x.numel() + y.numel())
        return ((lambda: torch.ops.aten.max_pool2d_with_indices_backward(dy, x, [3, 3], [2, 2], [1, 1], [1, 1], False, ind)),
                9.0 * y.numel(), 4.0 * (dy.numel() + 2 * x.numel()))
    if op.startswith("batchnorm"):
        n = c["N"]
        x = rnd(n, 64, 16, 16)
        gamma, beta, rm, rv = rnd(64), rnd(64), rnd(64), rnd(64, positive=True)
        byts = 4.0 * (2 * x.numel() + 6 * 64)
        if op.endswith("fwd"):
            return (lambda: F.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=0.1, eps=1e-5)), 8.0 * x.numel(), byts
        dy = rnd(n, 64, 16, 16)
        mean, invstd = rnd(64), rnd(64, positive=True)
        return ((lambda: torch.ops.aten.native_batch_norm_backward(dy, x, gamma, rm, rv, mean, invstd, True, 1e-5,
                                                                   [True, True, True])),
                8.0 * x.numel(), 4.0 * (3 * x.numel() + 6 * 64))
    e = c["E"]
    a, b = rnd(e), rnd(e)
    out = torch.empty(e, device=device)
    return (lambda: torch.add(a, b, out=out)), float(e), 12.0 * e


def bench_ops(quick, warmup, repeats, device, peak, min_sample_ms):
    res = []
    for c in op_cases(quick):
        run, flop, byts = op_closure(c, device)
        with torch.no_grad():
            for _ in range(warmup):
                run()
            sync(device)
            t0 = now_ms()
            run()
            sync(device)
            once = now_ms() - t0
            iters = 1 if quick else max(1, min(1000, math.ceil(min_sample_ms / max(once, 1e-3))))
            ms, spent = [], once
            for i in range(repeats):
                if i > 0 and spent > 20000:
                    break
                a = now_ms()
                for _ in range(iters):
                    run()
                sync(device)
                dt = now_ms() - a
                spent += dt
                ms.append(dt / iters)
        med = statistics.median(ms)
        gf = flop / (med * 1e-3) * 1e-9
        e = dict(name=c["name"], op=c["op"].split(":")[0], shape=c["shape"], kind=c["kind"], status="ok",
                 gflops=gf, gbps=byts / (med * 1e-3) * 1e-9, ms_min=min(ms), ms_median=med, ms_max=max(ms),
                 peak_fraction=(gf / peak if peak > 0 and c["kind"] == "compute" else None), flop=flop, bytes=byts,
                 repeats=len(ms), iters_per_sample=iters)
        print("  %-34s %-34s %9.2f %8.2f %10.4f %10.4f %10.4f" % (e["name"], e["shape"], e["gflops"], e["gbps"],
                                                                  e["ms_min"], e["ms_median"], e["ms_max"]), flush=True)
        res.append(e)
    return res


def r4(v):
    if isinstance(v, float) and math.isfinite(v) and v != 0:
        return round(v, 3 - int(math.floor(math.log10(abs(v)))))
    return v


def machine():
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0.0
    try:
        mem = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (ValueError, OSError):
        pass
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:
        load = None
    return dict(host=socket.gethostname(), cpu=cpu, cores=os.cpu_count(), memory_gib=round(mem, 1),
                os="%s %s %s" % (platform.system(), platform.release(), platform.machine()), load_avg_1m=load)


# ---------------------------------------------------------------- training (writes a run folder)

def evaluate(model, x_u8, y, device, batch=500):
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            idx = torch.arange(i, min(i + batch, len(y)))
            x, t = prep_batch(x_u8, y, idx, False, device)
            out = model(x)
            loss_sum += F.cross_entropy(out, t, reduction="sum").item()
            correct += (out.argmax(1) == t).sum().item()
    return loss_sum / len(y), 100.0 * correct / len(y)


def train(prob, args, device):
    xtr, ytr, xte, yte, k = load_data(args.data)
    if args.classes:
        k = args.classes
    pid, name, optname, lr, _, _, cosine, epochs, batch, augment = prob
    epochs = args.epochs or epochs
    batch = args.batch or batch
    cosine = args.epochs if (cosine and args.epochs) else cosine  # T_max of the schedule (0: constant)
    torch.manual_seed(args.seed)
    model = build_model(pid, k, args.weights).to(device)
    opt = make_optimizer(prob, model)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cosine) if cosine else None
    os.makedirs(args.out, exist_ok=True)
    nparams = sum(p.numel() for p in model.parameters())
    config = dict(problem=name, model=name, backend="pytorch", device=device_name(device), epochs=epochs,
                  batch_size=batch, lr=lr, optimizer=optname, schedule=("cosine:%d" % cosine) if cosine else "constant",
                  seed=args.seed, augment=augment, data=os.path.abspath(args.data), params=nparams, classes=k,
                  pretrained=bool(args.weights))
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    mpath = os.path.join(args.out, "metrics.jsonl")
    open(mpath, "w").close()
    rows, cum = [], 0.0
    n = len(ytr)
    for ep in range(1, epochs + 1):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        loss_sum, correct, seen = 0.0, 0, 0
        cur_lr = opt.param_groups[0]["lr"]
        for i in range(0, n - batch + 1, batch):  # last partial batch dropped, as vtrain does
            x, y = prep_batch(xtr, ytr, perm[i:i + batch], augment, device)
            out = model(x)
            loss = F.cross_entropy(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(y)
            correct += (out.argmax(1) == y).sum().item()
            seen += len(y)
        if sched:
            sched.step()
        sync(device)
        secs = time.perf_counter() - t0
        cum += secs
        test_loss, test_acc = evaluate(model, xte, yte, device)
        row = dict(epoch=ep, train_loss=loss_sum / seen, train_acc=100.0 * correct / seen, test_loss=test_loss,
                   test_acc=test_acc, lr=cur_lr, epoch_seconds=secs, cum_seconds=cum, images_per_s=seen / secs)
        rows.append(row)
        with open(mpath, "a") as f:
            f.write(json.dumps(row) + "\n")
        print("epoch %d/%d  train loss %.4f acc %.2f%%  test loss %.4f acc %.2f%%  %.1fs" %
              (ep, epochs, row["train_loss"], row["train_acc"], test_loss, test_acc, secs), flush=True)
    best = max(rows, key=lambda r: r["test_acc"])
    conv = next(r for r in rows if r["test_acc"] >= best["test_acc"] - 1.0)
    tgt = args.target_acc
    hit = next((r for r in rows if tgt is not None and r["test_acc"] >= tgt), None)
    summary = dict(problem=name, model=name, params=nparams, optimizer=optname, epochs=epochs,
                   best_test_acc=best["test_acc"], best_epoch=best["epoch"], final_test_acc=rows[-1]["test_acc"],
                   convergence_epoch=conv["epoch"], convergence_seconds=conv["cum_seconds"],
                   seconds_per_epoch=cum / len(rows), images_per_s=sum(r["images_per_s"] for r in rows) / len(rows),
                   backend="pytorch", device=device_name(device), target_acc=tgt,
                   time_to_target_seconds=hit["cum_seconds"] if hit else None)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    with open(os.path.join(args.out, "metrics.csv"), "w") as f:
        keys = list(rows[0].keys())
        f.write(",".join(keys) + "\n")
        for r in rows:
            f.write(",".join(str(r[key]) for key in keys) + "\n")


def device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu (torch %s, %d threads)" % (torch.__version__.split("+")[0], torch.get_num_threads())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", action="store_true", help="training-step benchmark (step time, images/s, split)")
    ap.add_argument("--ops", action="store_true", help="op micro-benchmarks, same cases as vtrain bench --ops")
    ap.add_argument("--train", action="store_true", help="train on --data, writing a run folder to --out")
    ap.add_argument("--problem", default="all", help="1..8, a name such as cnn-pool, or all (default)")
    ap.add_argument("--data", help="image-folder layout (train/<class>/*.jpg, test/...) or CIFAR binary files")
    ap.add_argument("--out", default="runs/pytorch", help="run folder for --train (one sub-folder per problem with all)")
    ap.add_argument("--json", help="write the bench JSON here")
    ap.add_argument("--classes", type=int, default=0, help="number of classes (default: 100, or what --data holds)")
    ap.add_argument("--batch", type=int, default=0, help="override the problem's batch size")
    ap.add_argument("--epochs", type=int, default=0, help="override the problem's epochs (--train)")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="tiny op shapes (as vtrain bench --quick)")
    ap.add_argument("--min-sample-ms", type=float, default=50.0,
                    help="repeat a short op within one timed sample until it lasts this long (as vtrain bench)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weights", help="problem 7: a torchvision resnet18 state_dict (.pth) to fine-tune from")
    ap.add_argument("--target-acc", type=float, default=None, help="--train: record the time to reach this accuracy")
    ap.add_argument("--vtrain", default=problems_table.default_vtrain(),
                    help="the vtrain program whose problem defaults to use (default: %(default)s)")
    ap.add_argument("--print-problems", action="store_true",
                    help="print the problems' defaults (read from --vtrain) as JSON and stop; needs no torch")
    args = ap.parse_args()
    set_problems(args.vtrain)
    if not (args.bench or args.ops or args.train):
        ap.error("say --bench, --ops and/or --train")
    if args.train and not args.data:
        ap.error("--train needs --data DIR")
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    start_machine = machine()  # the load as the run starts, as vtrain bench records it
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    device = torch.device(args.device)
    probs = PROBLEMS if args.problem == "all" else [find_problem(args.problem)]
    k = args.classes or 100

    if args.train:
        base = args.out
        for p in probs:
            if len(probs) > 1:
                args.out = os.path.join(base, "%d-%s" % (p[0], p[1]))
            print("== training problem %d %s -> %s" % (p[0], p[1], args.out), flush=True)
            train(p, args, device)
        args.out = base

    if args.bench or args.ops:
        be = dict(backend="pytorch", device=device_name(device), device_index=0, vendor="", driver=torch.__version__,
                  type=device.type, compute_units=torch.get_num_threads(), memory_bytes=0, peak_gflops=0,
                  is_cpu_hosted=device.type == "cpu", status="ok", ops=[], problems=[])
        print("== pytorch: %s" % be["device"], flush=True)
        if args.ops:
            be["ops"] = bench_ops(args.quick, args.warmup, args.repeats, device, 0.0, args.min_sample_ms)
        if args.bench:
            print("  %-20s %6s %10s %10s %10s %10s %8s %8s %8s %8s" % ("problem", "batch", "step min", "median", "max ms",
                                                                       "images/s", "data", "fwd", "bwd", "opt"))
            for p in probs:
                batch = args.batch or p[8]
                r = bench_problem(p, k, batch, args.warmup, args.repeats, device)
                print("  %-20s %6d %10.3f %10.3f %10.3f %10.1f %8.3f %8.3f %8.3f %8.3f" % (
                    p[1], batch, r["step_ms_min"], r["step_ms_median"], r["step_ms_max"], r["images_per_s"],
                    r["data_ms"], r["fwd_ms"], r["bwd_ms"], r["opt_ms"]), flush=True)
                be["problems"].append(r)
        for lst in (be["ops"], be["problems"]):
            for e in lst:
                for key, v in e.items():
                    e[key] = r4(v)
        doc = dict(tool="pytorch_ref.py", version=torch.__version__, machine=start_machine, date=started,
                   command="python3 " + " ".join([os.path.join("tools", os.path.basename(sys.argv[0]))] + sys.argv[1:]),
                   settings=dict(warmup=args.warmup, repeats=args.repeats, quick=args.quick, min_sample_ms=args.min_sample_ms), backends=[be])
        text = json.dumps(doc, indent=2)
        if args.json:
            with open(args.json, "w") as f:
                f.write(text + "\n")
        else:
            print(text)


if __name__ == "__main__":
    main()
