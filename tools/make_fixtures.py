#!/usr/bin/env python3
"""Builds the small weights fixtures in tests/fixtures/ (needs torch, safetensors, numpy from PyPI).

  python3 tools/make_fixtures.py [--out tests/fixtures] [--widths 4,8,16,32] [--seed 0]
  python3 tools/make_fixtures.py --check-safetensors FILE   # load FILE with safetensors.torch.load_file

Writes a narrow ResNet18 (torchvision parameter names, BasicBlock x [2,2,2,2], conv1 7x7/2 + maxpool,
fc to 10 classes) as torch.save() .pth and .safetensors, its input batch and PyTorch logits in eval and
train mode, the expected names/shapes/checksums, a tiny .pth with strided views and several dtypes,
and hostile samples (a pickle that calls os.system, truncated files, bad CRC, bad safetensors headers).
The hostile pickles are assembled byte by byte here and never unpickled."""
import argparse
import copy
import json
import os
import struct
import sys
import zipfile

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file


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
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + idt)


class ResNet18(nn.Module):
    """torchvision.models.resnet18 topology and parameter names with configurable widths."""

    def __init__(self, widths=(64, 128, 256, 512), num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = widths[0]
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, w, stride), BasicBlock(w, w, 1)))
            cin = w
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def summary(t):
    a = t.detach().cpu().numpy()
    flat = a.reshape(-1)
    return {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(a.shape),
            "sum": float(flat.astype(np.float64).sum()), "abs_sum": float(np.abs(flat.astype(np.float64)).sum()),
            "first": [float(v) for v in flat[:4]], "numel": int(flat.size)}


def stored_zip(path, records):
    """A zip with stored (uncompressed) entries, like torch.save writes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in records:
            z.writestr(name, data)


def binunicode(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def hostile(out):
    # GLOBAL os.system, then REDUCE with ("echo pwned",): what a malicious checkpoint does.
    evil = b"\x80\x02" + b"cos\nsystem\n" + b"q\x00" + binunicode("echo pwned") + b"\x85R."
    stored_zip(os.path.join(out, "evil_os_system.pth"),
               [("evil_os_system/data.pkl", evil), ("evil_os_system/byteorder", b"little"),
                ("evil_os_system/version", b"3\n")])
    # The same with protocol-4 STACK_GLOBAL builtins.eval inside an otherwise normal OrderedDict.
    evil2 = (b"\x80\x02" + b"ccollections\nOrderedDict\n)R(" + binunicode("w") + binunicode("builtins") +
             binunicode("eval") + b"\x93" + binunicode("__import__('os').system('echo pwned')") + b"\x85Ru.")
    stored_zip(os.path.join(out, "evil_stack_global.pth"),
               [("evil_stack_global/data.pkl", evil2), ("evil_stack_global/byteorder", b"little")])

    # A tiny state_dict: shared storage with strided views, several dtypes, a Parameter, int64.
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    tiny = {
        "base": base,
        "transposed": base.t(),                  # stride (1, 4)
        "slice": base[1:, 1:3],                  # offset 5, stride (4, 1)
        "half": torch.tensor([1.5, -2.25, 65504.0], dtype=torch.float16),
        "bf16": torch.tensor([1.5, -2.25, 3.0e38], dtype=torch.bfloat16),
        "double": torch.tensor([[0.1, -0.2]], dtype=torch.float64),
        "param": nn.Parameter(torch.full((2,), 0.5)),
        "bn.num_batches_tracked": torch.tensor(7, dtype=torch.int64),
    }
    tiny_path = os.path.join(out, "tiny.pth")
    torch.save(tiny, tiny_path)
    raw = open(tiny_path, "rb").read()
    with open(os.path.join(out, "tiny_truncated.pth"), "wb") as f:
        f.write(raw[: len(raw) * 2 // 3])
    # Flip one byte inside the storage of "base" (record tiny/data/0) so its CRC32 no longer matches.
    with zipfile.ZipFile(tiny_path) as z:
        info = z.getinfo("tiny/data/0")
    hdr = info.header_offset
    name_len, extra_len = struct.unpack("<HH", raw[hdr + 26: hdr + 30])
    data_off = hdr + 30 + name_len + extra_len
    bad = bytearray(raw)
    bad[data_off + 5] ^= 0x40
    with open(os.path.join(out, "tiny_bad_crc.pth"), "wb") as f:
        f.write(bytes(bad))

    def st(name, header, payload=b""):
        h = json.dumps(header).encode()
        h += b" " * (-len(h) % 8)
        with open(os.path.join(out, name), "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h + payload)

    good = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    st("st_ok.safetensors", good, struct.pack("<2f", 1.0, 2.0))
    with open(os.path.join(out, "st_huge_header.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", 1 << 60) + b'{"w":{}}')
    st("st_offset_past_end.safetensors", {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4096]}},
       struct.pack("<2f", 1.0, 2.0))
    st("st_huge_shape.safetensors", {"w": {"dtype": "F32", "shape": [1 << 40, 1 << 20], "data_offsets": [0, 8]}},
       struct.pack("<2f", 1.0, 2.0))
    st("st_size_mismatch.safetensors", {"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}},
       struct.pack("<2f", 1.0, 2.0))
    st("st_overlap.safetensors", {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                  "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}},
       struct.pack("<2f", 1.0, 2.0))
    st("st_bad_dtype.safetensors", {"w": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}},
       struct.pack("<2f", 1.0, 2.0))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
    ap.add_argument("--widths", default="4,8,16,32")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check-safetensors", metavar="FILE")
    args = ap.parse_args()
    if args.check_safetensors:
        d = load_file(args.check_safetensors)
        for k, v in d.items():
            print(k, v.dtype, list(v.shape), float(v.double().sum()))
        return 0

    out = os.path.normpath(args.out)
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(args.seed)
    widths = tuple(int(w) for w in args.widths.split(","))
    model = ResNet18(widths, num_classes=10)
    # Non-trivial BN: random affine parameters, then running stats from a few train-mode batches.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, 32, 32) * 1.5 + 0.3)
    sd = model.state_dict()
    torch.save(sd, os.path.join(out, "resnet18_narrow.pth"))
    save_file({k: v.contiguous() for k, v in sd.items()}, os.path.join(out, "resnet18_narrow.safetensors"),
              metadata={"source": "tools/make_fixtures.py", "widths": args.widths})

    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        model.eval()
        logits_eval = model(x)
        # Train mode normalises with batch statistics (biased variance) and updates running stats;
        # run it on a copy so the saved state stays the one above.
        m2 = copy.deepcopy(model).train()
        logits_train = m2(x)
    save_file({"input": x.contiguous(), "logits_eval": logits_eval.contiguous(),
               "logits_train": logits_train.contiguous()},
              os.path.join(out, "resnet18_narrow_io.safetensors"),
              metadata={"layout": "input [2,3,32,32] NCHW f32; logits_* [2,10] f32",
                        "bn_eps": "1e-5", "bn_momentum": "0.1"})

    expect = {"widths": list(widths), "num_classes": 10, "tensors": [dict(name=k, **summary(v)) for k, v in sd.items()]}
    with open(os.path.join(out, "resnet18_narrow_expect.json"), "w") as f:
        json.dump(expect, f, indent=1)
        f.write("\n")

    hostile(out)
    total = sum(os.path.getsize(os.path.join(out, n)) for n in os.listdir(out))
    print(f"wrote {len(os.listdir(out))} files, {total} bytes, to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
