"""
Instruction counts of a benchmark script under valgrind's callgrind: the
same count on every run (within about 1%), where CPU time on a shared
machine moves with the other work.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys


def instruction_counts(script: str, runs: list[list[str]]) -> list[int]:
    """
    Run ``python script`` under callgrind once per argument list.

    :returns: the instructions each run executed.
    """
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian package 'valgrind')")
    counts = []
    for argv in runs:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, script, *argv],
            capture_output=True, text=True, check=True)
        found = re.search(r"Collected : (\d+)", out.stderr)
        if found is None:
            raise SystemExit(f"no instruction count in valgrind's output:\n{out.stderr[-2000:]}")
        counts.append(int(found.group(1)))
    return counts
