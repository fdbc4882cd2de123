"""`berth demo` end to end: its own cluster, the mixed workload, and the summary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_prints_summary(tmp_path: Path) -> None:
    """The demo binds every pod that fits and explains the ones that cannot."""
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    result = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "demo", "--dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stderr
    assert "summary" in out
    assert "  bound               832" in out  # everything but the 20 pods that cannot fit
    assert "  pending              20" in out
    assert "8 Insufficient nvidia.com/gpu" in out
    assert "cluster down" in out
