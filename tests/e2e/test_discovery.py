"""berth reads the server's version and served APIs at start, and an API the server does not
serve turns its feature off instead of blocking readiness (discovery.py, App.run)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest
import yaml

import plugins as plugin_registry
from scheduler.app import App
from scheduler.config import parse
from scheduler.harness import binaries
from scheduler.kube.client import Client
from scheduler.kube.discovery import discover
from scheduler.kube.informer import Informer
from scheduler.serving import ServingOptions
from tests.e2e.conftest import BERTH_CONFIG, Cluster


async def test_discover_reads_version_and_groups(cluster: Cluster, client: Client) -> None:
    """The local plane is the version $K8S_VERSION selects; every supported version serves the
    APIs berth always watches, and v1.37's plane serves the Workload API."""
    info = await discover(client)
    assert (info.major, info.minor) >= (1, 35)
    for group_version in ("v1", "apps/v1", "policy/v1", "storage.k8s.io/v1", "resource.k8s.io/v1"):
        assert info.serves(group_version), group_version
    if cluster.local:
        assert info.git_version == binaries.k8s_version()
        assert info.serves("scheduling.k8s.io/v1beta1") == (info.minor >= 37)


async def test_unserved_api_turns_its_feature_off(
    cluster: Cluster, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """An informer for a group-version the server lacks is dropped with one log line, and the
    scheduler still becomes ready (a 404 retried forever would keep /readyz failing)."""
    config = parse(yaml.safe_load(BERTH_CONFIG), plugin_registry.registry().keys())
    async with Client.from_kubeconfig(cluster.kubeconfig) as api:
        app = App(config, api, serving=ServingOptions.local())
        missing = Informer(api, "/apis/berth.example.com/v1/widgets", lambda *_: None)
        app.informers.append(missing)
        app.optional_informers[missing] = ("berth.example.com/v1", "widgets")
        caplog.set_level(logging.INFO, logger="berth")
        running = asyncio.create_task(app.run())
        try:
            for _ in range(300):
                if app.server_info is not None and app.ready():
                    break
                assert not running.done(), running
                await asyncio.sleep(0.1)
            assert app.ready()
            assert missing not in app.informers
            dropped = [
                (r.api, r.feature)  # type: ignore[attr-defined]
                for r in caplog.records
                if r.getMessage() == "API not served: feature off"
            ]
            # scheduler-plugins' PodGroup CRD is not installed on the test plane either.
            assert ("berth.example.com/v1", "widgets") in dropped
            assert {api for api, _ in dropped} <= {
                "berth.example.com/v1",
                "scheduling.x-k8s.io/v1alpha1",
            }
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await running
