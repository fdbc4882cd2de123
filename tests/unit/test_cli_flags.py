"""`berth run` as a process: flags checked before anything starts (a bad value exits 2 with its
name), and a clean stop on SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from scheduler import cli

CONFIG = """\
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: berth
"""


@pytest.mark.parametrize("value", ["-1", "-0.5", "nan", "-inf"])
def test_a_bad_api_unreachable_timeout_exits_2(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Negative or NaN (which passes `< 0` and would fail /healthz whenever a pod waits)."""
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    argv = ["run", "--config", str(config), "--kubeconfig", "/nonexistent"]
    assert cli.main([*argv, f"--api-unreachable-timeout={value}"]) == 2
    assert "--api-unreachable-timeout: must be a number >= 0" in capsys.readouterr().err


KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster: {server: "http://127.0.0.1:9"}
contexts:
- name: nowhere
  context: {cluster: nowhere, user: nobody}
current-context: nowhere
users:
- name: nobody
  user: {token: x}
"""


def test_sigterm_stops_berth_run_cleanly(tmp_path: Path) -> None:
    """SIGTERM (what the kubelet sends a deleted pod) ends `berth run` with exit 0 and its
    "stopped" line, the run cancelled and cleaned up, even while the API server is away."""
    config, kubeconfig = tmp_path / "c.yaml", tmp_path / "kubeconfig"
    config.write_text(CONFIG)
    kubeconfig.write_text(KUBECONFIG)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [sys.executable, "-m", "scheduler.cli", "run", "--config", str(config)]
    argv += ["--kubeconfig", str(kubeconfig), "--secure-port", "0", "--port", str(port)]
    argv += ["--bind-address", "127.0.0.1"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(300):  # its health port answers once it runs
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, out
    assert "terminating on a signal" in out and '"stopped"' in out
    assert "Traceback" not in out


def test_a_taken_port_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """berth run on a port another process listens on exits 1 saying where and why."""
    import socket
    import subprocess
    import sys

    config = tmp_path / "config.yaml"
    config.write_text(
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
        "leaderElection:\n  leaderElect: false\nprofiles:\n- schedulerName: berth\n"
    )
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
        "    server: https://127.0.0.1:1\ncontexts:\n- name: c\n  context:\n    cluster: c\n"
        "    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n"
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "scheduler.cli", "run", "--config", str(config),
             "--kubeconfig", str(kubeconfig), "--secure-port", "0", "--port", str(port),
             "--bind-address", "127.0.0.1"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"berth run: cannot serve on 127.0.0.1:{port}: " in done.stderr
