#!/usr/bin/env python3
"""Checks that a file from `vtrain export --format safetensors` loads into torchvision's resnet18 with
strict=True (PyTorch, safetensors and torchvision from PyPI).

    python3 tools/check_export.py runs/resnet18-scratch/best.safetensors [--classes 100] [--stem cifar]
"""
import argparse
import sys

import torch
from safetensors.torch import load_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--classes", type=int, default=None, help="default: from fc.weight")
    ap.add_argument("--stem", choices=["imagenet", "cifar"], default="imagenet")
    a = ap.parse_args()
    sd = load_file(a.file)
    classes = a.classes or sd["fc.weight"].shape[0]
    import torchvision

    m = torchvision.models.resnet18(num_classes=classes)
    if a.stem == "cifar":
        m.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        m.maxpool = torch.nn.Identity()
    print(m.load_state_dict(sd, strict=True))
    m.eval()
    with torch.no_grad():
        out = m(torch.zeros(1, 3, 32, 32))
    print("forward ok:", tuple(out.shape))
    return 0


if __name__ == "__main__":
    sys.exit(main())
