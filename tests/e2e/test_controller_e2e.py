"""`berth controller` against the real API server: the PodGroup CRD, its status through a gang's
life, the RBAC it ships with, and the manifests (deploy/optional/ and the chart).

The controller runs as a subprocess watching only the test's namespace, authenticated with a
TokenRequest token of the chart's ServiceAccount and Role (podGroupController.namespace set), so
a missing permission shows as a failed test. No scheduler is involved: the test binds the pods
itself (they name a scheduler nobody serves), and KWOK turns bound pods Running.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler.controller import ClientGroupApi, Conflict
from scheduler.kube.client import ApiError, Client
from tests.builders import make_pod
from tests.e2e.conftest import Cluster, Running, free_port
from tests.e2e.test_deploy import (
    CHART,
    DEPLOY,
    documents,
    helm,
    http_ok,
    installed,
    kubectl,
    relocate,
    render_chart,
    token_kubeconfig,
    wait_for,
)

JSON = dict[str, Any]
CRD_FILE = DEPLOY / "optional" / "podgroup-crd.yaml"
CONTROLLER_FILE = DEPLOY / "optional" / "podgroup-controller.yaml"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
CRD_NAME = "podgroups.scheduling.x-k8s.io"
LABEL = "scheduling.x-k8s.io/pod-group"
NOBODY = "berth-test-nobody"  # a schedulerName no scheduler serves: the test binds the pods
TIMEOUT = 90.0  # generous: a loaded 2-core machine runs the whole control plane


def groups_path(namespace: str) -> str:
    return f"/apis/scheduling.x-k8s.io/v1alpha1/namespaces/{namespace}/podgroups"


@pytest.fixture
async def podgroup_crd(client: Client) -> AsyncIterator[None]:
    """deploy/optional/podgroup-crd.yaml, served: the cluster's own if it has one (left as it
    is), else created for the test and deleted afterwards."""
    (crd,) = documents(CRD_FILE.read_text())
    created = False
    try:
        await client.get(f"{CRDS}/{CRD_NAME}")
    except ApiError as err:
        if err.status != 404:
            raise
        await client.post(CRDS, crd)
        created = True

    async def served() -> bool:
        try:
            found = await client.get("/apis/scheduling.x-k8s.io/v1alpha1")
        except ApiError:
            return False
        return any(r["name"] == "podgroups" for r in found.get("resources", []))

    try:
        await wait_for(served, timeout=60)
        yield
    finally:
        if created:
            await client.delete(f"{CRDS}/{CRD_NAME}")


@pytest.fixture
async def controller_account(
    client: Client, cluster: Cluster, namespace: str, tmp_path: Path
) -> AsyncIterator[str]:
    """The chart's controller ServiceAccount with its Role in the test namespace; yields a
    kubeconfig with its TokenRequest token."""
    rendered = helm(
        "template", "berth", CHART, "--namespace", namespace,
        "--show-only", "templates/podgroup-controller.yaml",
        "--set", "podGroupController.enabled=true",
        "--set", f"podGroupController.namespace={namespace}",
    )  # fmt: skip
    wanted = ("ServiceAccount", "Role", "RoleBinding")
    objects = [d for d in documents(rendered) if d["kind"] in wanted]
    assert sorted(d["kind"] for d in objects) == sorted(wanted)
    suffix = uuid.uuid4().hex[:8]
    async with installed(client, relocate(objects, namespace, suffix), namespace):
        yield await token_kubeconfig(
            client, cluster, namespace, "berth-podgroup-controller", tmp_path / "pg.kubeconfig"
        )


def start_controller(kubeconfig: str, namespace: str, directory: Path) -> Running:
    """`berth controller` for one namespace; `port` is its /healthz port."""
    directory.mkdir(parents=True, exist_ok=True)
    health = free_port()
    log = directory / "controller.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "scheduler.cli", "controller",
                "--kubeconfig", kubeconfig,
                "--namespace", namespace,
                "--health-port", str(health),
                "--bind-address", "127.0.0.1",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    return Running(process, health, log)


def member(name: str, group: str, owner: JSON) -> JSON:
    pod = make_pod(name).scheduler(NOBODY).label(LABEL, group).for_api()
    pod["metadata"]["ownerReferences"] = [owner]
    pod["spec"]["terminationGracePeriodSeconds"] = 0
    return pod


async def bind(client: Client, namespace: str, pod: str, node: str) -> None:
    await client.post(
        f"/api/v1/namespaces/{namespace}/pods/{pod}/binding",
        {"metadata": {"name": pod}, "target": {"kind": "Node", "name": node}},
    )


async def test_controller_keeps_podgroup_status_through_a_gangs_life(
    cluster: Cluster,
    client: Client,
    namespace: str,
    podgroup_crd: None,
    controller_account: str,
    tmp_path: Path,
) -> None:
    """A PodGroup (minMember 3) goes Pending → Scheduling (occupiedBy, scheduleStartTime) once
    its 3 pods exist → Running once they are bound and running; it falls back to Pending when
    a member is deleted, runs again with a replacement, and fails when a member fails. Each
    phase change is an Event; the controller's RBAC is enough (no 403)."""
    controller = start_controller(controller_account, namespace, tmp_path / "controller")
    path = groups_path(namespace)

    async def status() -> JSON:
        group: JSON = await client.get(f"{path}/gang")
        return group.get("status") or {}

    async def reaches(**expected: Any) -> JSON:
        async def probe() -> JSON | None:
            if controller.process.poll() is not None:
                pytest.fail(controller.log.read_text(errors="replace")[-4000:], pytrace=False)
            now = await status()
            return now if all(now.get(k, 0) == v for k, v in expected.items()) else None

        try:
            return await wait_for(probe, timeout=TIMEOUT)
        except AssertionError:
            log = controller.log.read_text(errors="replace")[-3000:]
            raise AssertionError(f"status {await status()} never had {expected}\n{log}") from None

    try:
        assert await wait_for(lambda: http_ok(f"http://127.0.0.1:{controller.port}/healthz"))
        owner = await client.post(
            f"/api/v1/namespaces/{namespace}/configmaps", {"metadata": {"name": "train"}}
        )
        ref = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": "train",
            "uid": owner["metadata"]["uid"],
        }
        await client.post(
            path,
            {
                "apiVersion": "scheduling.x-k8s.io/v1alpha1",
                "kind": "PodGroup",
                "metadata": {"name": "gang"},
                "spec": {"minMember": 3, "scheduleTimeoutSeconds": 60},
            },
        )
        await reaches(phase="Pending")

        for i in range(3):
            await client.post(f"/api/v1/namespaces/{namespace}/pods", member(f"m{i}", "gang", ref))
        scheduling = await reaches(phase="Scheduling", occupiedBy=f"{namespace}/train")
        assert scheduling.get("scheduleStartTime")
        assert scheduling.get("running", 0) == 0

        nodes = [n["metadata"]["name"] for n in (await client.get("/api/v1/nodes"))["items"]]
        for i in range(3):
            await bind(client, namespace, f"m{i}", nodes[i % len(nodes)])
        running = await reaches(phase="Running", scheduled=3, running=3)
        assert running["scheduleStartTime"] == scheduling["scheduleStartTime"]

        # A member goes away: fewer pods than minMember.
        await client.request(
            "DELETE", f"/api/v1/namespaces/{namespace}/pods/m0", params={"gracePeriodSeconds": 0}
        )
        await reaches(phase="Pending", scheduled=2, running=2)

        # Its replacement: the gang is whole again.
        await client.post(f"/api/v1/namespaces/{namespace}/pods", member("m3", "gang", ref))
        await reaches(phase="Scheduling")
        await bind(client, namespace, "m3", nodes[0])
        await reaches(phase="Running", scheduled=3, running=3)

        # A member fails (as a kubelet would report it): the group fails, for good.
        pod_status = f"/api/v1/namespaces/{namespace}/pods/m1/status"
        await client.patch(pod_status, {"status": {"phase": "Failed"}}, kind="merge")
        await reaches(phase="Failed", running=2, failed=1)

        async def events() -> set[str] | None:
            items = (await client.get(f"/apis/events.k8s.io/v1/namespaces/{namespace}/events"))[
                "items"
            ]
            reasons = {
                e["reason"]
                for e in items
                if e.get("reportingController") == "berth-podgroup-controller"
                and e["regarding"]["kind"] == "PodGroup"
            }
            wanted = {"Pending", "Scheduling", "Running", "Failed"}
            return reasons if wanted <= reasons else None

        await wait_for(events, timeout=30)

        table = await asyncio.to_thread(
            kubectl, cluster, "-n", namespace, "get", "pg", "-o", "wide"
        )
        header, row = table.splitlines()[:2]
        columns = header.split()
        assert columns == [
            "NAME", "PHASE", "MINMEMBER", "RUNNING", "SUCCEEDED", "FAILED", "AGE", "SCHEDULED",
        ]  # fmt: skip
        # A zero count is not written (upstream's omitempty), so its cell is blank.
        starts = [header.index(c) for c in columns] + [None]
        cells = {
            c: row[a:b].strip() for c, a, b in zip(columns, starts[:-1], starts[1:], strict=True)
        }
        assert cells | {"AGE": ""} == {
            "NAME": "gang", "PHASE": "Failed", "MINMEMBER": "3", "RUNNING": "2",
            "SUCCEEDED": "", "FAILED": "1", "AGE": "", "SCHEDULED": "3",
        }  # fmt: skip
    finally:
        controller.stop()
    log = controller.log.read_text(errors="replace")
    assert "Forbidden" not in log and " 403" not in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(r.get("msg") == "status" for r in records)


def test_podgroup_manifests_pass_server_dry_run(cluster: Cluster, namespace: str) -> None:
    """deploy/optional's CRD and controller, and the chart with podGroupCRD.install and
    podGroupController.enabled, are accepted by the API server; the chart ships the same CRD
    and grants exactly what deploy/optional grants."""
    crd = documents(CRD_FILE.read_text())
    out = kubectl(cluster, "apply", "--dry-run=server", "-f", CRD_FILE)
    assert out.count("(server dry run)") == len(crd), out

    controller = documents(CONTROLLER_FILE.read_text())
    assert sorted(d["kind"] for d in controller) == sorted(
        ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment"]
    )
    # Into the test's namespace (berth-system need not exist here), with unique cluster names.
    suffix = uuid.uuid4().hex[:8]
    moved = relocate([d for d in controller if d["kind"] != "Deployment"], namespace, suffix)
    (deployment,) = [json.loads(json.dumps(d)) for d in controller if d["kind"] == "Deployment"]
    deployment["metadata"]["namespace"] = namespace
    text = yaml.safe_dump_all([*moved, deployment])
    out = kubectl(cluster, "apply", "--dry-run=server", "-f", "-", stdin=text)
    assert out.count("(server dry run)") == len(controller), out
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == "controller"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"

    sets = ("podGroupCRD.install=true", "podGroupController.enabled=true")
    chart_text = render_chart(namespace, sets=sets)
    rendered = documents(chart_text)
    out = kubectl(cluster, "apply", "--dry-run=server", "-f", "-", stdin=chart_text)
    assert out.count("(server dry run)") == len(rendered), out
    (chart_crd,) = [d for d in rendered if d["kind"] == "CustomResourceDefinition"]
    assert chart_crd["spec"] == crd[0]["spec"]
    assert chart_crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    (chart_role,) = [
        d
        for d in rendered
        if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "berth-podgroup-controller"
    ]
    (deployed_role,) = [d for d in controller if d["kind"] == "ClusterRole"]
    assert chart_role["rules"] == deployed_role["rules"]
    # Off by default.
    kinds = {d["kind"] for d in documents(render_chart(namespace))}
    assert "CustomResourceDefinition" not in kinds
    names = {d["metadata"]["name"] for d in documents(render_chart(namespace))}
    assert "berth-podgroup-controller" not in names


async def test_a_status_write_from_a_stale_read_is_refused(
    client: Client, namespace: str, podgroup_crd: None
) -> None:
    """What the controller's conditional writes rest on: a merge patch of podgroups/status
    carrying an old resourceVersion is a 409 (Conflict), the current one is accepted, and a
    write to a deleted group reads as gone."""
    api = ClientGroupApi(client, instance="test")
    await client.post(
        groups_path(namespace),
        {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
         "metadata": {"name": "probe"}, "spec": {"minMember": 2}},
    )  # fmt: skip
    group = await api.get(namespace, "probe")
    assert group is not None
    version = group["metadata"]["resourceVersion"]
    updated = await api.patch_status(namespace, "probe", version, {"phase": "Pending"})
    assert updated is not None and updated["status"] == {"phase": "Pending"}
    with pytest.raises(Conflict):
        await api.patch_status(namespace, "probe", version, {"phase": "Running"})
    assert (await api.get(namespace, "probe") or {})["status"] == {"phase": "Pending"}
    await client.delete(f"{groups_path(namespace)}/probe")
    assert await api.get(namespace, "probe") is None
    assert await api.patch_status(namespace, "probe", version, {"phase": "Running"}) is None
