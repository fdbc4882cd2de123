"""clientConnection.qps/burst: berth's defaults (1000/2000, not kube-scheduler's 50/100), what
counts as unset (a missing field, null, or 0, as upstream's SetDefaults_KubeSchedulerConfiguration
reads it), and that any explicit value wins, upstream's own 50/100 included, as do the
deprecated --kube-api-qps/--kube-api-burst flags without --config."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

import plugins as plugin_registry
from scheduler import flags
from scheduler.bench import processes
from scheduler.config import API_VERSION, KIND, ClientConnection, parse

KNOWN = frozenset(plugin_registry.registry())


def limits(client_connection: Any = None, *, omit: bool = False) -> tuple[float, int]:
    """(qps, burst) that berth runs with for a config holding `client_connection`."""
    doc: dict[str, Any] = {"apiVersion": API_VERSION, "kind": KIND}
    if not omit:
        doc["clientConnection"] = client_connection
    conn = parse(doc, KNOWN).client_connection
    return conn.qps, conn.burst


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        pytest.param({}, (1000.0, 2000), id="empty-section"),
        pytest.param(None, (1000.0, 2000), id="null-section"),
        pytest.param({"kubeconfig": "/k"}, (1000.0, 2000), id="only-kubeconfig"),
        pytest.param({"qps": 0, "burst": 0}, (1000.0, 2000), id="zero-means-default"),
        pytest.param({"qps": 0.0}, (1000.0, 2000), id="float-zero-qps-means-default"),
        pytest.param({"qps": 200}, (200.0, 2000), id="qps-alone-keeps-default-burst"),
        pytest.param({"burst": 10}, (1000.0, 10), id="burst-alone-keeps-default-qps"),
        pytest.param({"qps": 50, "burst": 100}, (50.0, 100), id="upstream-limits-explicitly-win"),
        pytest.param({"qps": 5000, "burst": 5000}, (5000.0, 5000), id="higher-limits-win"),
        pytest.param({"qps": -1}, (-1.0, 2000), id="negative-qps-means-unlimited-kept"),
    ],
)
def test_client_limits(section: Any, expected: tuple[float, int]) -> None:
    assert limits(section) == expected


def test_missing_client_connection_takes_berths_defaults() -> None:
    assert limits(omit=True) == (1000.0, 2000)


def test_dataclass_default_is_the_parsed_default() -> None:
    """Code that builds a ClientConnection() without a document (tests, the in-memory bench)
    gets the same limits as a config that leaves them out."""
    assert (
        ClientConnection()
        == parse({"apiVersion": API_VERSION, "kind": KIND}, KNOWN).client_connection
    )


def test_bench_upstream_default_leaves_berth_its_own_default() -> None:
    """`berth bench --qps upstream-default` writes no limits into berth's config, so berth runs
    with 1000/2000 while kube-scheduler runs with its 50/100; a number is written for both."""
    own = processes._config("/k", processes.Limits.parse("upstream-default"), "berth", [])
    assert "qps" not in own["clientConnection"] and "burst" not in own["clientConnection"]
    assert limits(own["clientConnection"]) == (1000.0, 2000)

    given = processes._config("/k", processes.Limits.parse("300"), "berth", [])
    assert limits(given["clientConnection"]) == (300.0, 300)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param([], (1000.0, 2000), id="no-flags-berths-default"),
        pytest.param(["--kube-api-qps=75", "--kube-api-burst=150"], (75.0, 150), id="flags-win"),
        pytest.param(["--kube-api-qps=0"], (1000.0, 2000), id="zero-flag-means-default"),
    ],
)
def test_deprecated_flags_without_config_file(argv: list[str], expected: tuple[float, int]) -> None:
    """Without --config, upstream's ApplyDeprecated copies --kube-api-qps/--kube-api-burst into
    clientConnection, so they win over berth's default as an explicit field does."""
    parser = argparse.ArgumentParser()
    flags.add_run_flags(parser)
    doc = flags.config_document(parser.parse_args(argv), None)
    conn = parse(doc, KNOWN).client_connection
    assert (conn.qps, conn.burst) == expected
