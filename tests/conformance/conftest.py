"""Test hardware for the conformance suite: one control plane for the session with upstream
kube-scheduler (schedulerName default-scheduler) and one `berth run` (schedulerName berth) on
the same API server, with kube-controller-manager for the volume and device claims. Nodes come
and go per scenario; see test_conformance.py.

The seed set is small by default (it runs in `make test`); `--conformance-seeds=full`, or
BERTH_CONFORMANCE_SEEDS=full, selects the full set (`make conformance`), and a comma-separated
list of integers selects those seeds.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from scheduler.harness import plane
from scheduler.kube.client import ApiError, Client
from tests.conformance.claim_scenarios import claim_cases
from tests.conformance.scenarios import FULL_SEEDS, PRIORITY_CLASSES, SMALL_SEEDS, select
from tests.e2e.conftest import BERTH_CONFIG, Running, assert_no_traceback, start_berth


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--conformance-seeds",
        default=None,
        help="conformance seed set: 'small' (default), 'full', or a list like '1,2,7'",
    )


def seeds(config: pytest.Config) -> tuple[int, ...]:
    choice = config.getoption("--conformance-seeds") or os.environ.get(
        "BERTH_CONFORMANCE_SEEDS", "small"
    )
    if choice == "small":
        return SMALL_SEEDS
    if choice == "full":
        return FULL_SEEDS
    return tuple(int(s) for s in choice.split(",") if s.strip())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "scenario" in metafunc.fixturenames:
        scenarios = select(seeds(metafunc.config)) + claim_cases()
        metafunc.parametrize("scenario", scenarios, ids=[s.id for s in scenarios])


@pytest.fixture(scope="session")
def conformance_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A control plane without nodes, with upstream kube-scheduler and
    kube-controller-manager (the PV controller binds the claims a scheduler chose volumes
    for, the ResourceClaim controller makes the pods' claims from templates and frees them
    when the pods go); yields its kubeconfig."""
    directory = tmp_path_factory.mktemp("conformance-plane")
    spec = plane.ClusterSpec(nodes=0, kube_scheduler=True, controller_manager=True)
    try:
        state = plane.up(directory, spec, log=_quiet)
    except plane.ClusterError as err:
        pytest.fail(f"control plane did not start: {err}", pytrace=False)
    try:
        yield state.kubeconfig
    finally:
        plane.down(directory, log=_quiet)


@pytest.fixture(scope="session")
def berth_process(
    conformance_plane: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    running = start_berth(BERTH_CONFIG, conformance_plane, tmp_path_factory.mktemp("berth"))
    try:
        yield running
    finally:
        running.stop()
    # Every scenario's events went through berth's handlers: none may have raised.
    assert_no_traceback(running)


@pytest.fixture(scope="session")
async def conformance_client(
    conformance_plane: str, berth_process: Running
) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(conformance_plane, qps=0) as c:
        for name, (value, policy) in PRIORITY_CLASSES.items():
            body = {
                "apiVersion": "scheduling.k8s.io/v1",
                "kind": "PriorityClass",
                "metadata": {"name": name},
                "value": value,
                "preemptionPolicy": policy,
            }
            try:
                await c.post("/apis/scheduling.k8s.io/v1/priorityclasses", body)
            except ApiError as err:
                if err.status != 409:
                    raise
        yield c


def _quiet(_: str) -> None:
    pass


def berth_log(running: Running) -> str:
    return Path(running.log).read_text(errors="replace")[-4000:]
