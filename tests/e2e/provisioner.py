"""A test provisioner for e2e tests, and builders for the storage objects around it.

In a cluster, a WaitForFirstConsumer claim of a class with an external provisioner is bound in
four steps, each by a different component:

1. the scheduler picks a node for the pod and writes it on the claim, as the annotation
   `volume.kubernetes.io/selected-node` (upstream's VolumeBinding, binder.go `AssumePodVolumes`
   and `bindAPIUpdate`), then waits in PreBind until the claim is bound (`checkBindings`);
2. kube-controller-manager's PV controller sees the annotation, finds no PV for the claim and,
   the class's provisioner being no in-tree plugin, hands the claim to an external provisioner
   by annotating it `volume.kubernetes.io/storage-provisioner` (and the beta
   `volume.beta.kubernetes.io/storage-provisioner`) with the provisioner's name
   (pv_controller.go `provisionClaimOperationExternal`);
3. the external provisioner creates a PV on that node, pre-bound to the claim (`claimRef` with
   the claim's uid) and annotated `pv.kubernetes.io/provisioned-by`;
4. the PV controller binds the claim to it (`spec.volumeName`, `pv.kubernetes.io/bind-completed`),
   which is what the scheduler's PreBind waits for.

`TestProvisioner` is step 3, for the duration of an `async with`: it polls claims every 0.2 s
and answers each claim it should provision, by the rules of sig-storage-lib-external-provisioner
(`shouldProvision`: the claim names this provisioner in a storage-provisioner annotation, which
the PV controller sets, has no volume yet, and carries a selected node). Like an external
provisioner it also deletes the volumes it made once the PV controller releases them (their
claim deleted, reclaimPolicy Delete); on exit it deletes whatever of its volumes is left.

The storage builders (`storage_class`, `claim`, `local_volume`: a static local PV with node
affinity, for the classes without a provisioner that the scheduler binds by matching) live in
scheduler/harness/storage.py, shared with `berth bench`; they are re-exported here.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Any

from scheduler.harness.storage import (
    CLAIMS,
    CLASSES,
    HOSTNAME,
    NO_PROVISIONER,
    VOLUMES,
    WAIT_FOR_FIRST_CONSUMER,
    claim,
    delete_volume,
    local_volume,
    storage_class,
    volume_hostnames,
)
from scheduler.kube.client import ApiError, Client

__all__ = [
    "BETA_STORAGE_PROVISIONER",
    "CLAIMS",
    "CLASSES",
    "HOSTNAME",
    "NO_PROVISIONER",
    "PROVISIONED_BY",
    "SELECTED_NODE",
    "STORAGE_PROVISIONER",
    "VOLUMES",
    "WAIT_FOR_FIRST_CONSUMER",
    "TestProvisioner",
    "claim",
    "delete_volume",
    "local_volume",
    "storage_class",
    "volume_hostnames",
]

JSON = dict[str, Any]

SELECTED_NODE = "volume.kubernetes.io/selected-node"
STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"


class TestProvisioner:
    """An external provisioner of local volumes named `provisioner`, running while the
    `async with` body does (see the module docstring).

    `namespace` limits it to one namespace's claims (all namespaces by default);
    `provisioned` maps each answered claim, "namespace/name", to its PV's name."""

    __test__ = False  # a helper, not a pytest test class

    def __init__(
        self,
        client: Client,
        provisioner: str = "test.berth.io/local",
        *,
        namespace: str | None = None,
        interval: float = 0.2,
    ) -> None:
        self.client = client
        self.provisioner = provisioner
        self.namespace = namespace
        self.interval = interval
        self.provisioned: dict[str, str] = {}
        self._answered: set[str] = set()  # claim uids
        self._task: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None

    async def __aenter__(self) -> TestProvisioner:
        self._task = asyncio.create_task(self._run(), name=f"provisioner {self.provisioner}")
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for name in self.provisioned.values():
            await delete_volume(self.client, name)
        if self._failure is not None and error is None:
            raise AssertionError(f"the test provisioner failed: {self._failure!r}")

    async def _run(self) -> None:
        while True:
            try:
                await self.sync()
            except ApiError as err:
                # Kept for the test to see; the loop goes on, as the server may recover.
                self._failure = err
            await asyncio.sleep(self.interval)

    async def sync(self) -> None:
        """One pass: provision each claim that asks for it, delete released volumes."""
        classes = {
            c["metadata"]["name"]
            for c in (await self.client.get(CLASSES))["items"]
            if c.get("provisioner") == self.provisioner
        }
        path = f"/api/v1/namespaces/{self.namespace}/persistentvolumeclaims"
        claims = (await self.client.get(path if self.namespace else CLAIMS))["items"]
        for pvc in claims:
            if self.should_provision(pvc, classes):
                await self.provision(pvc)
        for pv in (await self.client.get(VOLUMES))["items"]:
            annotations = pv["metadata"].get("annotations") or {}
            if (
                annotations.get(PROVISIONED_BY) == self.provisioner
                and (pv.get("status") or {}).get("phase") == "Released"
                and pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete"
            ):
                await delete_volume(self.client, pv["metadata"]["name"])

    def should_provision(self, pvc: JSON, classes: set[str]) -> bool:
        """sig-storage-lib-external-provisioner's shouldProvision for a WaitForFirstConsumer
        class: the PV controller handed the claim to this provisioner, the scheduler chose a
        node, and no volume is bound yet."""
        meta, spec = pvc["metadata"], pvc["spec"]
        annotations = meta.get("annotations") or {}
        handed_over = self.provisioner in (
            annotations.get(STORAGE_PROVISIONER),
            annotations.get(BETA_STORAGE_PROVISIONER),
        )
        return (
            spec.get("storageClassName") in classes
            and handed_over
            and bool(annotations.get(SELECTED_NODE))
            and not spec.get("volumeName")
            and meta["uid"] not in self._answered
            and not meta.get("deletionTimestamp")
        )

    async def provision(self, pvc: JSON) -> None:
        """A PV of the claim's size and access modes on its selected node, pre-bound to it."""
        meta, spec = pvc["metadata"], pvc["spec"]
        node_name = meta["annotations"][SELECTED_NODE]
        try:
            node = await self.client.get(f"/api/v1/nodes/{node_name}")
        except ApiError as err:
            if err.status == 404:  # the scheduler's choice is gone; it will choose again
                return
            raise
        hostname = (node["metadata"].get("labels") or {}).get(HOSTNAME, node_name)
        name = f"pvc-{meta['uid']}"  # external-provisioner's name for a claim's volume
        body = local_volume(
            name,
            hostname,
            spec["storageClassName"],
            size=spec["resources"]["requests"]["storage"],
            access_modes=spec.get("accessModes") or ["ReadWriteOnce"],
            reclaim_policy="Delete",
            claim_ref={
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
            annotations={PROVISIONED_BY: self.provisioner},
        )
        if spec.get("volumeMode"):
            body["spec"]["volumeMode"] = spec["volumeMode"]
        try:
            await self.client.post(VOLUMES, body)
        except ApiError as err:
            if err.status != 409:  # 409: made by an earlier pass whose answer was lost
                raise
        self._answered.add(meta["uid"])
        self.provisioned[f"{meta['namespace']}/{meta['name']}"] = name
