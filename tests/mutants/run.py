#!/usr/bin/env python3
"""Mutation testing: breaks the code one line at a time and runs the suites
that should notice. A benchmark of the tests, not part of `make check`.

Each mutant in tests/mutants/mutants.tsv names the guarantee it breaks (as
README.md states it), the file, the exact text of the line it changes (not
a line number, so the list survives edits), the replacement, and the
suites that should catch it. For each mutant this tool writes the
replacement into a copy of the tree (never the working tree), builds it,
and runs those suites; a suite that fails kills the mutant.

Usage: tests/mutants/run.py [--check] [WORD ...]
  WORD        run only the mutants whose id, guarantee or file contains it
              (also MUTANTS="word word" in the environment)
  --check     no build, no test: report the stale mutants (original line
              gone or not unique) and suite words that select no test
Environment: MUTANTS_REAL=1 adds the real-server suites (one real Keycloak
for the whole run; with MUTANTS_LOCK=file, each of them and its start hold
that lock, as flock(1) does); MUTANTS_TIMEOUT per suite run (default 300 s);
MUTANTS_BASELINE=0 skips the run of every named suite on the unbroken tree
(on by default: a suite that fails unbroken would "kill" every mutant);
MUTANTS_LIST another list file.

Prints a table, then "killed K of N", every survivor, every stale mutant
(counted apart, not as killed) and every mutant marked equivalent, with
the reason the list gives.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LIST = os.environ.get("MUTANTS_LIST") or os.path.join(HERE, "mutants.tsv")
# A lock file the real-server suites (and the start of their server) hold,
# where several heavy runs share a machine; none by default.
HEAVY_LOCK = os.environ.get("MUTANTS_LOCK")
TIMEOUT = int(os.environ.get("MUTANTS_TIMEOUT", "300"))
REAL = os.environ.get("MUTANTS_REAL") == "1"

E2E = {
    "warm": "tests/e2e/test_warm.py",
    "guarantees": "tests/e2e/test_guarantees.py",
    "hardening": "tests/e2e/test_hardening.py",
    "status": "tests/e2e/test_status.py",
    "edges": "tests/e2e/test_edges.py",
    "pool": "tests/e2e/test_pool.py",
    "down": "tests/e2e/test_down.py",
}
UNIT = ("json", "naming", "config", "binding", "hardening", "pool", "sha256")


class Suite:
    """One suite spec of the list: alias[:word|word]. An e2e alias ending
    in -real runs against a real Keycloak."""

    def __init__(self, spec):
        alias, _, words = spec.strip().partition(":")
        self.spec = spec.strip()
        self.alias = alias.strip()
        self.words = [w.strip() for w in words.split("|") if w.strip()] if words else []
        self.real = self.alias.endswith("-real")
        base = self.alias[:-5] if self.real else self.alias
        if base.startswith("unit-") and base[5:] in UNIT and not self.real:
            self.kind = "unit"
            self.target = "build/tests/test_" + base[5:]
        elif base in E2E:
            self.kind = "e2e"
            self.script = E2E[base]
            self.target = "build/drone-deps"
        else:
            raise SystemExit("mutants.tsv: unknown suite %r" % spec)

    def command(self):
        if self.kind == "unit":
            return [self.target]
        cmd = [sys.executable, self.script] + self.words
        if self.real and HEAVY_LOCK:
            cmd = ["flock", HEAVY_LOCK] + cmd
        return cmd

    def env(self, tree):
        env = dict(os.environ, DRONE_DEPS_BIN=os.path.join(tree, "build", "drone-deps"))
        env["KEYCLOAK_BACKEND"] = "real" if self.real else "stub"
        if self.real and SHARED_REAL:
            env["KEYCLOAK_URL"], env["KEYCLOAK_ADMIN_PASSWORD"] = SHARED_REAL
        return env


# (url, admin password) of the one real Keycloak every real suite of this
# run uses: started once, not once per mutant (a start costs a minute).
SHARED_REAL = None


def start_shared_real(tree):
    """Starts one real Keycloak (under MUTANTS_LOCK if set); returns it (stop() it)."""
    import fcntl
    global SHARED_REAL
    sys.path.insert(0, os.path.join(tree, "tests", "e2e"))
    from realkc import RealKeycloak
    if HEAVY_LOCK:
        with open(HEAVY_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            kc = RealKeycloak(quiet=True)
    else:
        kc = RealKeycloak(quiet=True)
    SHARED_REAL = (kc.url, kc.password)
    print("# real Keycloak for the real suites at %s" % kc.url, flush=True)
    return kc


class Mutant:
    def __init__(self, lineno, fields):
        if len(fields) < 6:
            raise SystemExit("mutants.tsv:%d: %d fields, 6 or 7 expected" % (lineno, len(fields)))
        self.id, self.guarantee, self.file, self.original, self.replacement, suites = fields[:6]
        self.note = fields[6].strip() if len(fields) > 6 else ""
        self.equivalent = self.note.lower().startswith("equivalent")
        self.suites = [Suite(s) for s in suites.split(";") if s.strip()]
        self.status = None
        self.detail = ""
        self.seconds = 0.0


def load(path=LIST):
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            out.append(Mutant(n, line.split("\t")))
    ids = [m.id for m in out]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise SystemExit("mutants.tsv: ids used twice: %s" % dup)
    return out


def locate(tree, m):
    """The index of the one line whose text (blanks at both ends aside) is
    the mutant's original, or a reason it is stale."""
    path = os.path.join(tree, m.file)
    if not os.path.exists(path):
        return None, "no file %s" % m.file
    lines = open(path).read().split("\n")
    hits = [i for i, l in enumerate(lines) if l.strip() == m.original.strip()]
    if not hits:
        return None, "original line not found"
    if len(hits) > 1:
        return None, "original line found %d times (lines %s)" % (len(hits), [h + 1 for h in hits])
    return hits[0], lines


def mutate(tree, m):
    """Writes the mutant into the copy; returns the file's original text."""
    i, lines = locate(tree, m)
    path = os.path.join(tree, m.file)
    text = open(path).read()
    indent = re.match(r"\s*", lines[i]).group(0)
    lines[i] = indent + m.replacement.strip() if m.replacement.strip() != "-" else ""
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return text


def copy_tree():
    """The tracked and untracked (not ignored) files of the working tree
    plus its build folder (times kept, so make rebuilds only what a mutant
    changes)."""
    tree = tempfile.mkdtemp(prefix="drone-deps-mutants-")
    p = subprocess.run(["git", "-C", ROOT, "ls-files", "-co", "--exclude-standard", "-z"],
                       capture_output=True)
    if p.returncode == 0:
        files = p.stdout.decode().split("\0")
    else:  # an unpacked archive: every file but the build's
        files = [os.path.relpath(os.path.join(d, f), ROOT) for d, dirs, fs in os.walk(ROOT)
                 for f in fs if not os.path.relpath(d, ROOT).split(os.sep)[0] in ("build", ".git")]
    for f in files:
        if not f or not os.path.isfile(os.path.join(ROOT, f)):
            continue
        dst = os.path.join(tree, f)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, f), dst, follow_symlinks=False)
    for d in ("build/obj", "build/asan", "build/tests"):
        src = os.path.join(ROOT, d)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(tree, d), symlinks=True)
    for f in ("build/drone-deps", "build/asan/drone-deps"):
        if os.path.isfile(os.path.join(ROOT, f)) and not os.path.exists(os.path.join(tree, f)):
            shutil.copy2(os.path.join(ROOT, f), os.path.join(tree, f))
    return tree


def build(tree, targets):
    p = subprocess.run(["make", "-s", "-C", tree] + sorted(targets), capture_output=True, text=True)
    return p.returncode == 0, (p.stdout + p.stderr)[-2000:]


def run_suite(tree, s):
    """(failed, first failing test or reason, output). The suite runs in a
    process group of its own, killed whole at the timeout."""
    p = subprocess.Popen(s.command(), cwd=tree, env=s.env(tree), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        return True, "timeout after %d s" % TIMEOUT, out.decode(errors="replace")
    text = out.decode(errors="replace")
    bad = [l[len("not ok"):].strip(" -") for l in text.splitlines() if l.startswith("not ok")]
    if bad:
        return True, bad[0], text
    if p.returncode != 0:
        return True, "exit %d" % p.returncode, text
    return False, "", text


def runnable(m):
    return [s for s in m.suites if REAL or not s.real]


def baseline(tree, mutants):
    """Each suite alias once on the unbroken copy, with every word the
    selected mutants give it: all must pass, or the run means nothing."""
    groups = {}
    for m in mutants:
        for s in runnable(m):
            g = groups.setdefault(s.alias, (s, set()))
            if s.words:
                g[1].update(s.words)
            else:
                g[1].add(None)
    for alias, (s, words) in sorted(groups.items()):
        whole = Suite(alias if None in words else alias + ":" + "|".join(sorted(words)))
        t0 = time.time()
        failed, why, out = run_suite(tree, whole)
        print("# baseline %-18s %s (%.0f s)" % (alias, "FAILS: " + why if failed else "passes",
                                                 time.time() - t0), flush=True)
        if failed:
            print("\n".join("#   " + l for l in out.splitlines()[-40:]))
            return False
    return True


def check_only(mutants):
    """Stale originals and suite words that select no test, without a build."""
    bad = 0
    for m in mutants:
        i, why = locate(ROOT, m)
        if i is None:
            print("stale  %-28s %s: %s" % (m.id, m.file, why))
            bad += 1
    words = {}
    for m in mutants:
        for s in m.suites:
            if s.kind == "e2e":
                words.setdefault(s.script, set()).update(s.words)
    for script, ws in sorted(words.items()):
        if not ws:
            continue
        p = subprocess.run([sys.executable, os.path.join(ROOT, script), "--list"] + sorted(ws),
                           capture_output=True, text=True)
        if p.returncode != 0:
            print("words  %s: %s" % (script, (p.stdout + p.stderr).strip().splitlines()[-1]))
            bad += 1
    print("%d mutants, %d problems" % (len(mutants), bad))
    return 1 if bad else 0


def main(argv):
    args = [a for a in argv if a != "--check"]
    words = args + os.environ.get("MUTANTS", "").split()
    mutants = load()
    if words:
        mutants = [m for m in mutants if any(w in m.id or w in m.guarantee or w in m.file for w in words)]
        if not mutants:
            print("no mutant's id, guarantee or file contains any of %s" % words)
            return 1
    if "--check" in argv:
        return check_only(mutants)
    start = time.time()
    tree = copy_tree()
    real_kc = None
    try:
        if any(s.real for m in mutants for s in runnable(m)):
            real_kc = start_shared_real(tree)
        ok, log = build(tree, {s.target for m in mutants for s in runnable(m)} | {"build/drone-deps"})
        if not ok:
            print("the unbroken copy does not build:\n" + log)
            return 1
        if os.environ.get("MUTANTS_BASELINE", "1") != "0" and not baseline(tree, mutants):
            print("a suite fails on the unbroken tree: fix it first")
            return 1
        for m in mutants:
            t0 = time.time()
            i, why = locate(tree, m)
            if i is None:
                m.status, m.detail = "stale", why
            elif m.equivalent:
                m.status, m.detail = "equivalent", m.note
            elif not runnable(m):
                m.status, m.detail = "not run", "real-server suites only (MUTANTS_REAL=1)"
            else:
                text = mutate(tree, m)
                try:
                    ok, log = build(tree, {s.target for s in runnable(m)})
                    if not ok:
                        errs = [l for l in log.splitlines() if "error" in l] or log.strip().splitlines() or [""]
                        m.status, m.detail = "no build", errs[0].strip()
                    else:
                        m.status, m.detail = "survived", ""
                        for s in runnable(m):
                            failed, why, _ = run_suite(tree, s)
                            if failed:
                                m.status, m.detail = "killed", "%s: %s" % (s.alias, why)
                                break
                finally:
                    with open(os.path.join(tree, m.file), "w") as f:
                        f.write(text)
            m.seconds = time.time() - t0
            print("%-10s %-30s %5.0f s  %s" % (m.status, m.id, m.seconds, m.detail[:110]), flush=True)
    finally:
        if real_kc is not None:
            real_kc.stop()
        shutil.rmtree(tree, ignore_errors=True)
    report(mutants, time.time() - start)
    counted = [m for m in mutants if m.status in ("killed", "survived", "no build")]
    return 0 if all(m.status == "killed" for m in counted) else 1


def report(mutants, seconds):
    print()
    print("| mutant | guarantee | file | result | caught by |")
    print("|---|---|---|---|---|")
    for m in mutants:
        print("| %s | %s | %s | %s | %s |" % (m.id, m.guarantee, m.file, m.status,
                                             m.detail.replace("|", "/")[:120]))
    counted = [m for m in mutants if m.status in ("killed", "survived", "no build")]
    killed = [m for m in counted if m.status == "killed"]
    print()
    print("killed %d of %d" % (len(killed), len(counted)))
    for label, st in (("survivor", "survived"), ("no build", "no build"), ("stale", "stale"),
                      ("equivalent", "equivalent"), ("not run", "not run")):
        for m in mutants:
            if m.status == st:
                print("%s: %s (%s, %s) %s" % (label, m.id, m.file, m.guarantee, m.detail))
    others = {st: len([m for m in mutants if m.status == st]) for st in ("stale", "equivalent", "not run")}
    print("%d stale, %d equivalent, %d not run; %.0f s in all" %
          (others["stale"], others["equivalent"], others["not run"], seconds))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
