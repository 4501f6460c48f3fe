#!/usr/bin/env python3
"""Builds the small weights fixtures in tests/fixtures/ (needs torch, safetensors, numpy from PyPI).

  python3 tools/make_fixtures.py [--out tests/fixtures] [--widths 4,8,16,32] [--seed 0]
  python3 tools/make_fixtures.py --fcn [--out tests/fixtures] [--seed 0]   # the FCN/VGG16 fixtures only
  python3 tools/make_fixtures.py --check-safetensors FILE   # load FILE with safetensors.torch.load_file

Writes a narrow ResNet18 (torchvision parameter names, BasicBlock x [2,2,2,2], conv1 7x7/2 + maxpool,
fc to 10 classes) as torch.save() .pth and .safetensors, its input batch and PyTorch logits in eval and
train mode, the expected names/shapes/checksums, a tiny .pth with strided views and several dtypes,
and hostile samples (a pickle that calls os.system, truncated files, bad CRC, bad safetensors headers).
The hostile pickles are assembled byte by byte here and never unpickled.

--fcn writes, instead, a narrow VGG16 (width 4: channels 4,8,16,32,32; fc6/fc7 of 16 channels) and the
FCN-32s / FCN-8s on it for 6 classes, with PyTorch's logits for two inputs (2x3x64x64 and 1x3x72x40, the
second not a multiple of 32). To stay small, the weights are split by where they come from, not copied
twice: vgg16_narrow.pth is torchvision's VGG16 state_dict layout (features.N, classifier.0/3/6 Linear
layers: the file a pretrained import reads, fc6/fc7 through the import alias), fcn_narrow_heads.safetensors
the FCN layers beyond VGG16 (score_*, upscore2/upscore_pool4/upscore8, perturbed away from bilinear so that
an [in,out] layout mix-up shows). FCN-32s's upscore (k64, 6x6x64x64) is left out: it stays at its bilinear
initialisation on both sides. fcn_narrow_keys.json lists the FCN modules' state_dict names and shapes."""
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


def vgg_cfg_d(width):
    """torchvision's VGG16 configuration "D" with every channel count scaled by width / 64."""
    return [v if v == "M" else v * width // 64
            for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]]


def bilinear_weight(c, k):
    """fcn.berkeleyvision.org's upsampling weight (surgery.upsample_filt on the diagonal): [c, c, k, k]."""
    factor = (k + 1) // 2
    center = factor - 1 if k % 2 == 1 else factor - 0.5
    og = np.ogrid[:k, :k]
    filt = (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)
    w = np.zeros((c, c, k, k), dtype=np.float32)
    w[range(c), range(c), :, :] = filt
    return torch.from_numpy(w)


class VGG16Narrow(nn.Module):
    """torchvision.models.vgg16's module names (features from torchvision's own make_layers, classifier
    0/3/6), with classifier widths that follow the narrow features instead of 512*7*7 -> 4096."""

    def __init__(self, width, fc_width, num_classes):
        super().__init__()
        from torchvision.models.vgg import make_layers
        self.features = make_layers(vgg_cfg_d(width))
        self.classifier = nn.Sequential(nn.Linear(8 * width * 7 * 7, fc_width), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(fc_width, fc_width), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(fc_width, num_classes))


class FCN(nn.Module):
    """FCN-32s / FCN-8s (staged) without the 100-pixel padding: every upsampling goes to the size of the
    layer it joins (output_size), the last to the input's. Names as fcn.berkeleyvision.org's nets."""

    def __init__(self, features, width, fc_width, k, eight):
        super().__init__()
        self.eight = eight
        self.features = features
        self.fc6 = nn.Conv2d(8 * width, fc_width, 7, padding=3)
        self.relu6 = nn.ReLU(True)
        self.drop6 = nn.Dropout()
        self.fc7 = nn.Conv2d(fc_width, fc_width, 1)
        self.relu7 = nn.ReLU(True)
        self.drop7 = nn.Dropout()
        self.score_fr = nn.Conv2d(fc_width, k, 1)
        if eight:
            self.upscore2 = nn.ConvTranspose2d(k, k, 4, 2, 1, bias=False)
            self.score_pool4 = nn.Conv2d(8 * width, k, 1)
            self.upscore_pool4 = nn.ConvTranspose2d(k, k, 4, 2, 1, bias=False)
            self.score_pool3 = nn.Conv2d(4 * width, k, 1)
            self.upscore8 = nn.ConvTranspose2d(k, k, 16, 8, 4, bias=False)
        else:
            self.upscore = nn.ConvTranspose2d(k, k, 64, 32, 16, bias=False)

    def forward(self, x):
        pool3 = self.features[:17](x)  # torchvision's indices: the third max-pool is features.16
        pool4 = self.features[17:24](pool3)
        pool5 = self.features[24:](pool4)
        h = self.drop6(self.relu6(self.fc6(pool5)))
        h = self.drop7(self.relu7(self.fc7(h)))
        h = self.score_fr(h)
        if not self.eight:
            return self.upscore(h, output_size=x.shape[2:])
        h = self.upscore2(h, output_size=pool4.shape[2:]) + self.score_pool4(pool4)
        h = self.upscore_pool4(h, output_size=pool3.shape[2:]) + self.score_pool3(pool3)
        return self.upscore8(h, output_size=x.shape[2:])


def fcn_fixtures(out, seed):
    width, fc_width, k = 4, 16, 6
    torch.manual_seed(seed)
    vgg = VGG16Narrow(width, fc_width, k)
    with torch.no_grad():
        # torchvision's init for the convolutions (kaiming normal, fan_out), but non-zero biases (as a
        # trained network has) so that a bias read from the wrong place shows
        for m in vgg.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                m.bias.uniform_(-0.1, 0.1)
            elif isinstance(m, nn.Linear):
                m.weight.normal_(0, (2.0 / m.in_features) ** 0.5)
                m.bias.uniform_(-0.1, 0.1)
    vgg_sd = vgg.state_dict()
    torch.save(vgg_sd, os.path.join(out, "vgg16_narrow.pth"))

    fcns = {}
    for name, eight in (("fcn32s", False), ("fcn8s", True)):
        m = FCN(copy.deepcopy(vgg.features), width, fc_width, k, eight)
        with torch.no_grad():
            # fc6/fc7 are VGG16's classifier.0/3 read in the convolutions' shapes
            m.fc6.weight.copy_(vgg.classifier[0].weight.reshape(m.fc6.weight.shape))
            m.fc6.bias.copy_(vgg.classifier[0].bias)
            m.fc7.weight.copy_(vgg.classifier[3].weight.reshape(m.fc7.weight.shape))
            m.fc7.bias.copy_(vgg.classifier[3].bias)
        fcns[name] = m
    # the layers beyond VGG16, one set shared by both nets: random scores (zero at a real start, which
    # would hide the skips), upsampling bilinear (FCN-32s's fixed 64x64 one) or bilinear + noise
    heads = {}
    for n, mod in fcns["fcn8s"].named_children():
        if n.startswith("score"):
            with torch.no_grad():
                mod.weight.normal_(0, (1.0 / mod.in_channels) ** 0.5)
                mod.bias.uniform_(-0.5, 0.5)
        elif n.startswith("upscore"):
            with torch.no_grad():
                mod.weight.copy_(bilinear_weight(k, mod.kernel_size[0]) + 0.05 * torch.randn_like(mod.weight))
        else:
            continue
        for pn, p in mod.named_parameters():
            heads[n + "." + pn] = p.detach().clone()
    with torch.no_grad():
        fcns["fcn32s"].score_fr.load_state_dict(fcns["fcn8s"].score_fr.state_dict())
        fcns["fcn32s"].upscore.weight.copy_(bilinear_weight(k, 64))
    save_file({n: t.contiguous() for n, t in heads.items()}, os.path.join(out, "fcn_narrow_heads.safetensors"),
              metadata={"source": "tools/make_fixtures.py --fcn"})

    # inputs exact in f16 (stored as F16: half the bytes); the reference runs in float64 on the f32
    # weights so that it is PyTorch's answer without its own rounding
    io = {}
    for tag, shape in (("a", (2, 3, 64, 64)), ("b", (1, 3, 72, 40))):
        x = torch.randn(*shape).half()
        io["input_" + tag] = x
        for name, m in fcns.items():
            with torch.no_grad():
                y = copy.deepcopy(m).double().eval()(x.double())
            io[name + "_" + tag] = y.float()
    save_file({n: t.contiguous() for n, t in io.items()}, os.path.join(out, "fcn_narrow_io.safetensors"),
              metadata={"layout": "input_a [2,3,64,64], input_b [1,3,72,40] NCHW f16; fcn32s_*/fcn8s_* logits "
                                  "[N,6,H,W] f32 (eval mode, computed in float64)",
                        "width": str(width), "fc_width": str(fc_width), "classes": str(k)})
    keys = {name: [[n, list(t.shape)] for n, t in m.state_dict().items()] for name, m in fcns.items()}
    keys["vgg16"] = [[n, list(t.shape)] for n, t in vgg_sd.items()]
    with open(os.path.join(out, "fcn_narrow_keys.json"), "w") as f:
        json.dump(keys, f)
        f.write("\n")
    names = ["vgg16_narrow.pth", "fcn_narrow_heads.safetensors", "fcn_narrow_io.safetensors", "fcn_narrow_keys.json"]
    total = sum(os.path.getsize(os.path.join(out, n)) for n in names)
    print(f"wrote {len(names)} files, {total} bytes, to {out}")
    return 0


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
    ap.add_argument("--fcn", action="store_true", help="write the VGG16/FCN fixtures (only those)")
    args = ap.parse_args()
    if args.check_safetensors:
        d = load_file(args.check_safetensors)
        for k, v in d.items():
            print(k, v.dtype, list(v.shape), float(v.double().sum()))
        return 0

    out = os.path.normpath(args.out)
    os.makedirs(out, exist_ok=True)
    if args.fcn:
        return fcn_fixtures(out, args.seed)
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
