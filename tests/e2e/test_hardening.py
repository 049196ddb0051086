#!/usr/bin/env python3
"""Hardening rules (issue "Hardening"): the guarantees of README.md hold
under attack, stops and faults. One test per finding, each able to fail on
the code before its fix; driven against the Keycloak stand-in."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ADMIN_PASSWORD, BIN, PYTHON, ROOT, Failure, check,  # noqa: E402
                     main, read_env_file, test)


def only_master(ctx):
    realms = ctx.stub.realms()
    check(set(realms) == {"master"}, "realms left behind: %s" % sorted(realms))


def marks(run, job, expires):
    return {"drone-deps.owner": "drone-deps", "drone-deps.run": run,
            "drone-deps.job": job, "drone-deps.expires": str(expires)}


# ---- 11: the contract a reader finds is in the project -----------------------

@test("no file of the project cites a design document the project does not have")
def no_missing_design_doc(ctx):
    name = "DESIGN" + ".md"
    if os.path.exists(os.path.join(ROOT, name)):
        raise Failure("%s exists now: this test no longer applies" % name)
    cites = []
    for top in ("plugin", "tests", "tools", "mk", "docs", "Makefile", "README.md",
                "Dockerfile", ".drone.yml"):
        path = os.path.join(ROOT, top)
        files = [path] if os.path.isfile(path) else [
            os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs]
        for f in files:
            try:
                text = open(f, errors="replace").read()
            except OSError:
                continue
            for n, line in enumerate(text.splitlines(), 1):
                if name in line:
                    cites.append("%s:%d" % (os.path.relpath(f, ROOT), n))
    check(not cites, "cites %s: %s" % (name, ", ".join(cites)))


if __name__ == "__main__":
    sys.exit(main())
