"""`berth demo` end to end: its own cluster, the mixed workload, and the summary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def test_demo_prints_summary(tmp_path: Path) -> None:
    """The demo binds every pod that fits and explains the ones that cannot."""
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scheduler.cli", "demo", "--dir", str(tmp_path / "demo")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        _, err = proc.communicate(timeout=420)
    except subprocess.TimeoutExpired:
        proc.terminate()  # the demo takes its cluster down on SIGTERM
        _, err = proc.communicate(timeout=60)
        pytest.fail(f"berth demo did not finish in 420 s; it printed:\n{err[-3000:]}")
    result = subprocess.CompletedProcess(proc.args, proc.returncode, "", err)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stderr
    assert "summary" in out
    assert "  bound               832" in out  # everything but the 20 pods that cannot fit
    assert "  pending              20" in out
    assert "8 Insufficient nvidia.com/gpu" in out
    assert "cluster down" in out
