#!/usr/bin/env python3
"""Turns the launcher section of cuda_kernels.cu into host code for emu_runtime.cpp: each
`kernel<<<grid, block, 0, s>>>(args);` becomes an emu_launch() of a lambda that calls the kernel."""
import re
import sys

THREADED = {"vt_k_channel_sum", "vt_k_bn_fwd", "vt_k_bn_bwd", "vt_k_bn_stats", "vt_k_bn_bwd_stats",
            "vt_k_softmax_ce", "vt_k_softmax_ce_bwd", "vt_k_argmax", "vt_k_confusion"}

src = open(sys.argv[1]).read()
part = src[src.index("/* ---- launchers ---- */"):]
part = part.replace('extern "C" {', "").replace('} /* extern "C" */', "")


def repl(m):
    name, grid, block, args = m.group(1), m.group(2), m.group(3), m.group(4)
    threads = "true" if name in THREADED else "false"
    return f"emu_launch(s, (unsigned)({grid}), (unsigned)({block}), {threads}, [=] {{ {name}({args}); }});"


out, n = re.subn(r"(\w+)<<<([^\n]*), ([^,\n]+), 0, s>>>\((.*?)\);", repl, part, flags=re.S)
if n == 0 or "<<<" in out:
    sys.exit("make_launches.py: could not translate every launch")
sys.stdout.write(out)
