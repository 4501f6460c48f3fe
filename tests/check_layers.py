#!/usr/bin/env python3
"""Fails on an #include that runs against the layering of the source tree:

    tools -> train -> {models, io, data, comm} -> engine <- backends <- registry <- conformance

Every quoted include of a C, CUDA, C++ or OpenCL/GLSL file under core/, backends/, models/ and
tools/ is resolved to the module that owns the header (core/<module>/include/vt, models/include/vt,
backends/include/vt, or the including module's own folder) and checked against ALLOWED. Tests may
include anything. Usage: check_layers.py [ROOT] (default: the tree this script lives in), or
check_layers.py --selftest (plants a wrong-way include in a scratch tree and expects a failure).
"""
import os
import re
import sys
import tempfile

# module -> the modules whose headers it may include (its own are always allowed)
ALLOWED = {
    "engine": set(),
    "io": {"engine"},
    "data": {"engine"},
    "comm": {"engine"},
    "report": {"engine"},
    "models": {"engine"},
    "backend": {"engine", "registry"},  # a backend includes vt/registry.h only to declare its one symbol
    "registry": {"engine"},
    "conformance": {"registry", "engine"},
    "train": {"models", "io", "data", "comm", "engine"},
    "tools": {"train", "models", "io", "data", "comm", "engine", "report", "conformance", "registry"},
}
# external headers only the module that links the library may include
EXTERNAL = {"curl/": "data", "archive.h": "data", "archive_entry.h": "data", "png.h": "data", "jpeglib.h": "data",
            "zlib.h": ("io", "data"), "cjson/": ("io", "report", "conformance", "train", "tools")}
SYSTEM_RE = re.compile(r'^[ \t]*#[ \t]*include[ \t]+<([^>]+)>', re.M)
CORE_MODULES = ("engine", "io", "data", "comm", "report", "conformance", "train")
SOURCE_EXT = (".c", ".h", ".cu", ".cpp", ".cl", ".comp", ".glsl")
INCLUDE_RE = re.compile(r'^[ \t]*#[ \t]*include[ \t]+"([^"]+)"', re.M)


def module_of(rel):
    """The module a file (path relative to the root, with /) belongs to, or None (not checked)."""
    parts = rel.split("/")
    if parts[0] == "core" and len(parts) > 2 and parts[1] in CORE_MODULES:
        return parts[1]
    if parts[0] == "models":
        return "models"
    if parts[0] == "tools":
        return "tools"
    if parts[0] == "backends":
        if rel == "backends/registry.c" or rel.startswith("backends/include/"):
            return "registry"
        return "backend"
    if parts[0] == "shaders":
        return "backend"
    return None


def header_owners(root):
    """vt/NAME.h -> module that owns it."""
    owners = {}
    dirs = [("core/%s/include/vt" % m, m) for m in CORE_MODULES]
    dirs += [("models/include/vt", "models"), ("backends/include/vt", "registry")]
    for d, m in dirs:
        full = os.path.join(root, d)
        if os.path.isdir(full):
            for name in os.listdir(full):
                owners["vt/" + name] = m
    return owners


def check(root):
    owners = header_owners(root)
    problems = []
    for top in ("core", "backends", "models", "tools", "shaders"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for f in sorted(files):
                if not f.endswith(SOURCE_EXT):
                    continue
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, root).replace(os.sep, "/")
                mod = module_of(rel)
                if mod is None:
                    continue
                with open(path, encoding="utf-8", errors="replace") as fh:
                    text = fh.read()
                for match in INCLUDE_RE.finditer(text):
                    inc = match.group(1)
                    line = text.count("\n", 0, match.start()) + 1
                    if inc.startswith("vt/"):
                        owner = owners.get(inc)
                        if owner is None:
                            problems.append("%s:%d: includes %s, which no module's include folder holds" % (rel, line, inc))
                        elif owner != mod and owner not in ALLOWED[mod]:
                            problems.append("%s:%d: %s includes %s of %s (a %s file may include %s only)" % (
                                rel, line, mod, inc, owner, mod, ", ".join(sorted(ALLOWED[mod] | {mod}))))
                    elif ".." in inc.split("/"):
                        problems.append("%s:%d: includes %s: a path out of its folder; include another module's "
                                        "public header as vt/NAME.h" % (rel, line, inc))
                for match in SYSTEM_RE.finditer(text):
                    inc = match.group(1)
                    for prefix, owners_ in EXTERNAL.items():
                        owners_ = (owners_,) if isinstance(owners_, str) else owners_
                        if inc.startswith(prefix) and mod not in owners_:
                            line = text.count("\n", 0, match.start()) + 1
                            problems.append("%s:%d: %s includes <%s>, a library only %s links" % (
                                rel, line, mod, inc, " and ".join(owners_)))
    return problems


def selftest():
    with tempfile.TemporaryDirectory() as tmp:
        def write(rel, text):
            p = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as fh:
                fh.write(text)
        write("core/engine/include/vt/tensor.h", "\n")
        write("core/train/include/vt/train.h", '#include "vt/tensor.h"\n')
        write("core/engine/src/tensor.c", '#include "vt/tensor.h"\n')
        write("core/train/src/train.c", '#include "vt/train.h"\n#include "vt/tensor.h"\n')
        if check(tmp):
            print("selftest: a clean tree was reported: %s" % check(tmp))
            return 1
        write("core/engine/src/graph.c", '#include "vt/tensor.h"\n\n#include "vt/train.h"\n')
        got = check(tmp)
        want = "core/engine/src/graph.c:3: engine includes vt/train.h of train"
        if len(got) != 1 or not got[0].startswith(want):
            print("selftest: expected one problem starting %r, got %r" % (want, got))
            return 1
        write("core/engine/src/graph.c", '#include "../../train/src/train_internal.h"\n')
        if len(check(tmp)) != 1:
            print("selftest: a relative include out of the module was not reported")
            return 1
        write("core/engine/src/graph.c", '#include <curl/curl.h>\n')
        if len(check(tmp)) != 1:
            print("selftest: the engine including libcurl was not reported")
            return 1
    print("selftest: the wrong-way includes were reported, the clean tree passed")
    return 0


def main(argv):
    if len(argv) > 1 and argv[1] == "--selftest":
        return selftest()
    root = argv[1] if len(argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        print("%d include(s) run against the layering (see docs/architecture.md)" % len(problems))
        return 1
    print("layering: every include runs the right way")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
