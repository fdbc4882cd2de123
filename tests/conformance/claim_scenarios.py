"""Conformance scenarios whose pods claim volumes (WaitForFirstConsumer PersistentVolumeClaims)
or DRA devices (ResourceClaims), hand-written like scenarios.py's edge cases.

Each scenario brings its own cluster-scoped objects (`Scenario.objects`: StorageClasses,
CSIDrivers, DeviceClasses, ResourceSlices), named after it so that no other scenario sees them,
and the objects each run makes afresh (`Scenario.run_objects`: the claims, claim templates and
CSIStorageCapacities in the run's namespace, and the static PersistentVolumes). The first run's
claims are gone, and its devices deallocated, before the second run starts: both runs see the
same free volumes and devices (test_conformance.py).

The outcomes are order-independent as scenarios.py requires: each contended set of volumes or
devices is wanted by one replica class only (the others are pinned to nodes of their own by a
nodeSelector, fit nowhere, or take nothing from it: admin access), or its demands add up so
that every order gives the same counts (`dra-counts`: a shared pair of GPUs and two pods of
six, on eight).
"""

from __future__ import annotations

from typing import Any

from scheduler.harness import fakedra
from scheduler.harness.storage import NO_PROVISIONER, claim, local_volume, storage_class
from tests.conformance.scenarios import HOSTNAME, ZONE, Scenario, _node, _pod, _replicas
from tests.e2e.test_storage_capacity_e2e import csi_driver, storage_capacity

JSON = dict[str, Any]

PROVISIONER = "conformance.berth.io/local"  # a TestProvisioner plays it during each run
MODEL = f"{fakedra.DRIVER}/model"  # the fake GPUs' model attribute, qualified
MEMORY_AT_LEAST_64GI = (
    f'device.capacity["{fakedra.DRIVER}"].memory.compareTo(quantity("64Gi")) >= 0'
)
ADMIN_ACCESS = "resource.kubernetes.io/admin-access"  # namespace label DRA admin access needs


def _on(node: str) -> JSON:
    return {HOSTNAME: node}


def _with_volumes(pods: list[JSON], storage_class_name: str, *sizes: str) -> list[JSON]:
    """Give each pod one claim of its own per size, named `<pod>-v<i>`, mounted as volume
    v<i>; returns the claims to make before the pods."""
    claims = []
    for pod in pods:
        name = pod["metadata"]["name"]
        pod["spec"]["volumes"] = []
        for i, size in enumerate(sizes):
            claims.append(claim(f"{name}-v{i}", storage_class_name, size))
            pod["spec"]["volumes"].append(
                {"name": f"v{i}", "persistentVolumeClaim": {"claimName": f"{name}-v{i}"}}
            )
    return claims


def _with_claim(pods: list[JSON], *, template: str = "", claim_name: str = "") -> list[JSON]:
    """Give each pod one spec.resourceClaims entry "gpu": a claim generated from `template`,
    or the shared claim `claim_name`."""
    for pod in pods:
        entry: JSON = {"name": "gpu"}
        if template:
            entry["resourceClaimTemplateName"] = template
        else:
            entry["resourceClaimName"] = claim_name
        pod["spec"]["resourceClaims"] = [entry]
    return pods


def _small(group: str, count: int, **node_selector: str) -> list[JSON]:
    return _replicas(
        _pod("x", cpu="10m", memory="16Mi").node_selector(**node_selector), group, count
    )


def _model(name: str) -> str:
    """A CEL selector of the fake GPUs of one model."""
    return f'device.attributes["{fakedra.DRIVER}"].model == "{name}"'


def _template(name: str, device_class: str, **spec: Any) -> JSON:
    return fakedra.claim_template(name, device_class=device_class, **spec)


# --- volumes -------------------------------------------------------------------------------


def local_volumes() -> Scenario:
    """Static local PVs, fewer than the pods that want them."""
    single, pairs = "conf-local-volumes", "conf-local-volumes-pairs"
    pods = _small("data", 5)
    claims = _with_volumes(pods, single, "1Gi")
    big = _small("big-data", 1)
    claims += _with_volumes(big, single, "2Gi")
    pair = _small("pair", 1)
    claims += _with_volumes(pair, pairs, "1Gi", "1Gi")
    pinned = _small("pinned", 1)
    claims += _with_volumes(pinned, single, "1Gi")
    volumes = [
        local_volume("conf-lv-0a", "lv-0", single),
        local_volume("conf-lv-0b", "lv-0", single),
        local_volume("conf-lv-1a", "lv-1", single),
        local_volume("conf-lv-pair-1", "lv-1", pairs),
        local_volume("conf-lv-pair-2a", "lv-2", pairs),
        local_volume("conf-lv-pair-2b", "lv-2", pairs),
        # Pre-bound to pinned-0's claim (the run fills in the namespace): the PV controller
        # binds the two at once, and the pod must follow its volume to lv-2.
        local_volume(
            "conf-lv-pinned",
            "lv-2",
            single,
            claim_ref={"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": "pinned-0-v0"},
        ),
    ]
    return Scenario(
        "local-volumes",
        [_node(f"lv-{i}").obj_() for i in range(3)],
        [*pods, *big, *pair, *pinned],
        "3 free static local PVs of 1Gi (2 on lv-0, 1 on lv-1) for 5 pods: 3 bound, each on "
        "its PV's node; a 2Gi claim fits no PV; a pod with two claims goes where both bind; "
        "a claim pre-bound to a PV takes its pod to the PV's node",
        objects=[storage_class(single, NO_PROVISIONER), storage_class(pairs, NO_PROVISIONER)],
        run_objects=[*volumes, *claims],
    )


def provisioned_topology() -> Scenario:
    """A provisioner whose class allows one zone; CPU decides how many fit there."""
    zonal, nowhere = "conf-provisioned-zone-a", "conf-provisioned-nowhere"
    pods = _replicas(_pod("x", cpu="1"), "zonal", 5)
    claims = _with_volumes(pods, zonal, "1Gi")
    zone_b = _small("zonal-in-zone-b", 1, **{ZONE: "zone-b"})
    claims += _with_volumes(zone_b, zonal, "1Gi")
    lost = _small("nowhere", 1)
    claims += _with_volumes(lost, nowhere, "1Gi")
    return Scenario(
        "provisioned-topology",
        [
            _node("pt-0", cpu="2").zone("zone-a").obj_(),
            _node("pt-1", cpu="2").zone("zone-a").obj_(),
            _node("pt-2", cpu="8").zone("zone-b").obj_(),
        ],
        [*pods, *zone_b, *lost],
        "a WaitForFirstConsumer class with a provisioner and allowedTopologies zone-a: 4 of "
        "the 5 one-CPU pods fit its two 2-CPU nodes and get a volume there; a pod held to "
        "zone-b, and a claim of a class allowed nowhere, wait",
        objects=[
            storage_class(zonal, PROVISIONER, allowed_topologies=[(ZONE, ["zone-a"])]),
            storage_class(nowhere, PROVISIONER, allowed_topologies=[(ZONE, ["zone-x"])]),
        ],
        run_objects=claims,
        provisioner=PROVISIONER,
    )


def storage_capacity_scenario() -> Scenario:
    """CSIStorageCapacity decides where a claim can be provisioned."""
    driver, capacity = "conf-capacity.csi.example.com", "conf-capacity"
    mid = _small("mid", 2)
    claims = _with_volumes(mid, capacity, "5Gi")
    small = _small("small", 2)
    claims += _with_volumes(small, capacity, "1Gi")
    huge = _small("huge", 1)
    claims += _with_volumes(huge, capacity, "50Gi")
    return Scenario(
        "storage-capacity",
        [_node(f"sc-{i}").obj_() for i in range(3)],
        [*mid, *small, *huge],
        "a CSI driver with storageCapacity: sc-0 reports 10Gi, sc-1 100Gi in volumes of at "
        "most 2Gi, sc-2 nothing: 5Gi claims go to sc-0, 1Gi ones to sc-0 or sc-1, 50Gi waits",
        objects=[csi_driver(driver), storage_class(capacity, driver)],
        run_objects=[
            storage_capacity("sc-0", capacity, "sc-0", "10Gi"),
            storage_capacity("sc-1", capacity, "sc-1", "100Gi", maximum="2Gi"),
            *claims,
        ],
        provisioner=driver,
    )


# --- devices -------------------------------------------------------------------------------


def dra_counts() -> Scenario:
    """Claims of several sizes from templates, each size on 8 GPUs of its own."""
    gpu = "conf-dra-counts"
    three = _with_claim(_small("three", 3, **_on("dc-0")), template="three")
    two = _with_claim(_small("two", 5, **_on("dc-1")), template="two")
    six = _with_claim(_small("six", 2, **_on("dc-2")), template="six")
    shared = _with_claim(_small("shared", 2, **_on("dc-2")), claim_name="pair")
    nine = _with_claim(_small("nine", 1), template="nine")
    nodes = [f"dc-{i}" for i in range(3)]
    return Scenario(
        "dra-counts",
        [_node(n).obj_() for n in nodes],
        [*three, *two, *six, *shared, *nine],
        "8 GPUs a node: pods of 3 on dc-0 (2 fit), of 2 on dc-1 (4 fit), of 6 and two pods "
        "sharing one claim of 2 on dc-2 (one 6 and the pair, in any order); 9 fits nowhere",
        objects=[fakedra.device_class(gpu), *(fakedra.gpu_slice(n) for n in nodes)],
        run_objects=[
            *(_template(name, gpu, count=n) for name, n in [("three", 3), ("two", 2)]),
            *(_template(name, gpu, count=n) for name, n in [("six", 6), ("nine", 9)]),
            fakedra.claim("pair", count=2, device_class=gpu),
        ],
    )


def dra_attributes() -> Scenario:
    """matchAttribute and a CEL selector on nodes of 4 a100 (40Gi) and 4 h100 (80Gi)."""
    gpu = "conf-dra-attributes"
    same = _with_claim(_small("same-model", 3, **_on("da-0")), template="same-model")
    big = _with_claim(_small("big-memory", 5, **_on("da-1")), template="big-memory")
    alike = _with_claim(_small("four-alike", 3, **_on("da-2")), template="four-alike")
    v100 = _with_claim(_small("v100", 1), template="v100")
    nodes = [f"da-{i}" for i in range(3)]
    return Scenario(
        "dra-attributes",
        [_node(n).obj_() for n in nodes],
        [*same, *big, *alike, *v100],
        "3 GPUs of one model (matchAttribute): 2 pods fit da-0, one per model; 1 GPU of "
        ">= 64Gi: 4 pods fit da-1; two requests of 2 that share a model: 2 pods fit da-2; a "
        "model no node has: none",
        objects=[fakedra.device_class(gpu), *(fakedra.mixed_slice(n) for n in nodes)],
        run_objects=[
            _template("same-model", gpu, count=3, match_attribute=MODEL),
            _template("big-memory", gpu, selectors=[MEMORY_AT_LEAST_64GI]),
            _template("four-alike", gpu, count=2, requests=2, match_attribute=MODEL),
            _template("v100", gpu, selectors=[_model("v100")]),
        ],
    )


def dra_first_available_and_all() -> Scenario:
    """A prioritized list of subrequests, and allocationMode All."""
    gpu = "conf-dra-first-available"
    ranked = {
        "apiVersion": fakedra.API_VERSION,
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": "h100-else-a100"},
        "spec": {"spec": {"devices": {"requests": [{"name": "gpu", "firstAvailable": []}]}}},
    }
    ranked["spec"]["spec"]["devices"]["requests"][0]["firstAvailable"] = [
        {
            "name": model,
            "deviceClassName": gpu,
            "count": count,
            "selectors": [{"cel": {"expression": _model(model)}}],
        }
        for model, count in (("h100", 4), ("a100", 2))
    ]
    every = _template("every", gpu)
    exactly = every["spec"]["spec"]["devices"]["requests"][0]["exactly"]
    exactly["allocationMode"] = "All"
    del exactly["count"]
    ranked_pods = _with_claim(_small("h100-else-a100", 4, **_on("fa-0")), template="h100-else-a100")
    every_pods = _with_claim(_small("every", 4, **{"conformance/pool": "all"}), template="every")
    return Scenario(
        "dra-first-available-and-all",
        [
            _node("fa-0").obj_(),
            *(_node(f"al-{i}").label("conformance/pool", "all").obj_() for i in range(3)),
        ],
        [*ranked_pods, *every_pods],
        "firstAvailable, 4 h100 else 2 a100, on 4 h100 and 4 a100: the first pod gets the "
        "h100s, two more get a100s, one waits; allocationMode All on nodes of 2 and 3 GPUs "
        "and one without a slice: one pod a node that has devices",
        objects=[
            fakedra.device_class(gpu),
            fakedra.mixed_slice("fa-0"),
            fakedra.gpu_slice("al-0", count=2),
            fakedra.gpu_slice("al-1", count=3),
        ],
        run_objects=[ranked, every],
    )


def dra_and_cpu() -> Scenario:
    """A claim and a CPU request that run out on different nodes."""
    gpu = "conf-dra-and-cpu"
    pods = _with_claim(_replicas(_pod("x", cpu="1"), "gpu-cpu", 6), template="one")
    return Scenario(
        "dra-and-cpu",
        [_node("dx-0", cpu="2").obj_(), _node("dx-1", cpu="8").obj_()],
        pods,
        "pods of 1 GPU and 1 CPU: dx-0 has 8 GPUs and 2 CPUs, dx-1 2 GPUs and 8 CPUs, so 2 "
        "fit on each and 2 wait",
        objects=[
            fakedra.device_class(gpu),
            fakedra.gpu_slice("dx-0", count=8),
            fakedra.gpu_slice("dx-1", count=2),
        ],
        run_objects=[_template("one", gpu)],
    )


def dra_preemption() -> Scenario:
    """A higher-priority pod whose claim needs a device that lower-priority pods hold.
    Upstream's DynamicResources rejects a node where the claims cannot be allocated as
    UnschedulableAndUnresolvable ("cannot allocate all claims"), so PostFilter does not look
    for victims there: nothing is evicted."""
    gpu = "conf-dra-preemption"
    low = _with_claim(_small("low", 2), template="one")
    high = _with_claim(_small("preemptor", 1), template="one")
    for pod in low:
        pod["spec"]["priorityClassName"] = "conformance-low"
    high[0]["spec"]["priorityClassName"] = "conformance-preemptor"
    return Scenario(
        "dra-preemption",
        [_node("dp-0").obj_()],
        [*low, *high],
        "2 GPUs held by two low-priority pods; a preemptor of 1 GPU evicts neither and waits: "
        "a claim that cannot be allocated is unresolvable, so preemption is not tried",
        objects=[fakedra.device_class(gpu), fakedra.gpu_slice("dp-0", count=2)],
        run_objects=[_template("one", gpu)],
        settle_before=(2,),
    )


def dra_admin_access() -> Scenario:
    """Admin access claims devices that are in use, and takes none from others."""
    gpu = "conf-dra-admin-access"
    workers = _with_claim(_small("worker", 3), template="one")
    monitors = _with_claim(_small("monitor", 2), template="monitor")
    monitor = _template("monitor", gpu, count=2)
    monitor["spec"]["spec"]["devices"]["requests"][0]["exactly"]["adminAccess"] = True
    return Scenario(
        "dra-admin-access",
        [_node("dd-0").obj_()],
        [*workers, *monitors],
        "2 GPUs: 2 of 3 one-GPU workers fit; both monitors, each with admin access to both "
        "GPUs, fit too",
        objects=[fakedra.device_class(gpu), fakedra.gpu_slice("dd-0", count=2)],
        run_objects=[_template("one", gpu), monitor],
        namespace_labels={ADMIN_ACCESS: "true"},
    )


# --- both --------------------------------------------------------------------------------


def volume_and_device() -> Scenario:
    """Pods that need a static local PV and a GPU, which only one node has together."""
    local, gpu = "conf-volume-and-device", "conf-volume-and-device"
    pods = _with_claim(_small("both", 3), template="one")
    claims = _with_volumes(pods, local, "1Gi")
    volumes = [local_volume(f"conf-vd-0{c}", "vd-0", local) for c in "ab"]
    volumes += [local_volume(f"conf-vd-1{c}", "vd-1", local) for c in "abc"]
    return Scenario(
        "volume-and-device",
        [_node(f"vd-{i}").obj_() for i in range(3)],
        pods,
        "a PV and a GPU each: vd-0 has 2 PVs and no GPU, vd-1 3 PVs and 2 GPUs, vd-2 8 GPUs "
        "and no PV: 2 pods fit on vd-1, 1 waits",
        objects=[
            storage_class(local, NO_PROVISIONER),
            fakedra.device_class(gpu),
            fakedra.gpu_slice("vd-1", count=2),
            fakedra.gpu_slice("vd-2", count=8),
        ],
        run_objects=[*volumes, *claims, _template("one", gpu)],
    )


def claim_cases() -> list[Scenario]:
    return [
        local_volumes(),
        provisioned_topology(),
        storage_capacity_scenario(),
        dra_counts(),
        dra_attributes(),
        dra_first_available_and_all(),
        dra_and_cpu(),
        dra_preemption(),
        dra_admin_access(),
        volume_and_device(),
    ]
