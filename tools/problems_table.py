#!/usr/bin/env python3
"""The eight problems' training defaults, read from vtrain itself (`vtrain list --json`), so that
tools/pytorch_ref.py trains with vtrain's own table (one table, no copy to drift). No torch needed.

    python3 tools/problems_table.py [--vtrain PATH]            # print the table
    python3 tools/problems_table.py --check [--vtrain PATH]    # pytorch_ref.py's defaults == vtrain's

--vtrain defaults to build/tools/vtrain next to this repository (or $VTRAIN)."""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIELDS = ("id", "name", "optimizer", "lr", "momentum", "weight_decay", "nesterov", "schedule", "epochs",
          "batch_size", "augment", "dropout")


def default_vtrain():
    return os.environ.get("VTRAIN") or os.path.join(os.path.dirname(HERE), "build", "tools", "vtrain")


def load(vtrain=None):
    """The problems as vtrain lists them: a list of dicts with FIELDS (and whatever else vtrain adds)."""
    vtrain = vtrain or default_vtrain()
    try:
        out = subprocess.run([vtrain, "list", "--json"], check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise SystemExit("problems_table: cannot run '%s list --json' (%s); build vtrain or give --vtrain PATH"
                         % (vtrain, e))
    try:
        probs = json.loads(out)
    except ValueError as e:
        raise SystemExit("problems_table: '%s list --json' printed no JSON: %s" % (vtrain, e))
    if not isinstance(probs, list) or not probs:
        raise SystemExit("problems_table: '%s list --json' printed no problems" % vtrain)
    for p in probs:
        missing = [f for f in FIELDS if f not in p]
        if missing:
            raise SystemExit("problems_table: problem %s lacks %s" % (p.get("name", "?"), ", ".join(missing)))
    return probs


def cosine_epochs(schedule):
    """T_max of a "cosine:N" schedule, 0 for "constant"."""
    if schedule == "constant":
        return 0
    if schedule.startswith("cosine:") and schedule[7:].isdigit():
        return int(schedule[7:])
    raise SystemExit("problems_table: schedule %r has no PyTorch equivalent here" % schedule)


def as_tuple(p):
    """(id, name, optimizer, lr, momentum, weight decay, cosine T_max or 0, epochs, batch, augment): the
    shape of pytorch_ref.py's table."""
    return (p["id"], p["name"], p["optimizer"], p["lr"], p["momentum"], p["weight_decay"],
            cosine_epochs(p["schedule"]), p["epochs"], p["batch_size"], p["augment"])


def check(vtrain):
    """pytorch_ref.py's defaults, as it prints them without torch, against vtrain's own list."""
    want = load(vtrain)
    cmd = [sys.executable, os.path.join(HERE, "pytorch_ref.py"), "--print-problems", "--vtrain", vtrain]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    if r.returncode != 0:
        print("pytorch_ref.py --print-problems failed (%d): %s" % (r.returncode, r.stderr.decode(errors="replace")))
        return 1
    got = json.loads(r.stdout)
    bad = 0
    if len(got) != len(want):
        print("pytorch_ref.py has %d problems, vtrain %d" % (len(got), len(want)))
        return 1
    for g, w in zip(got, want):
        for f in FIELDS:
            if g.get(f) != w[f]:
                print("problem %s: %s is %r in pytorch_ref.py, %r in vtrain" % (w["name"], f, g.get(f), w[f]))
                bad += 1
    print("%d problems, %d fields each: %s" % (len(want), len(FIELDS), "equal" if not bad else "%d differ" % bad))
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vtrain", default=default_vtrain(), help="the vtrain program (default: %(default)s)")
    ap.add_argument("--check", action="store_true", help="check pytorch_ref.py's defaults against vtrain's")
    args = ap.parse_args()
    if args.check:
        sys.exit(check(args.vtrain))
    for p in load(args.vtrain):
        print(json.dumps({f: p[f] for f in FIELDS}))


if __name__ == "__main__":
    main()
