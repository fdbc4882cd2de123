"""scheduler.explain.render: the report for a pending, a preempting and a bound pod."""

from __future__ import annotations

from scheduler.explain import render


def test_pending_pod_message_then_plugin_table() -> None:
    """The upstream message, then rows per plugin and reason, most nodes first."""
    out = render(
        {
            "pod": "ns/p",
            "queue": "unschedulable",
            "attempts": 2,
            "message": "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had taints.",
            "total_nodes": 3,
            "by_plugin": {
                "TaintToleration": {"node(s) had taints": 2},
                "NodeResourcesFit": {"Insufficient cpu": 1},
            },
        }
    )
    assert out.splitlines() == [
        "Pod ns/p: pending (queue: unschedulable, attempts: 2)",
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had taints.",
        "",
        "Rejected nodes by plugin (of 3 nodes):",
        "PLUGIN            REASON              NODES",
        "TaintToleration   node(s) had taints  2",
        "NodeResourcesFit  Insufficient cpu    1",
    ]


def test_preempting_pod_lists_nominated_node_and_victims() -> None:
    out = render(
        {
            "pod": "ns/p",
            "queue": "unschedulable",
            "attempts": 1,
            "message": "0/1 nodes are available: 1 Insufficient cpu.",
            "total_nodes": 1,
            "by_plugin": {"NodeResourcesFit": {"Insufficient cpu": 1}},
            "nominated_node": "n1",
            "victims": ["ns/low"],
        }
    )
    assert out.splitlines()[-2:] == [
        "Preemption: nominated to n1; preempting 1 pod(s):",
        "  ns/low",
    ]


def test_prefilter_rejection_applies_to_all_nodes() -> None:
    out = render(
        {
            "pod": "ns/p",
            "queue": "unschedulable",
            "attempts": 1,
            "message": "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
            "total_nodes": 2,
            "by_plugin": {},
            "pre_filter": {
                "plugin": "VolumeBinding",
                "reason": "pod has unbound immediate PersistentVolumeClaims",
            },
        }
    )
    assert out.splitlines()[-1].split() == [
        "VolumeBinding",
        "pod",
        "has",
        "unbound",
        "immediate",
        "PersistentVolumeClaims",
        "all",
    ]


def test_bound_pod_top_nodes() -> None:
    out = render(
        {
            "pod": "ns/p",
            "queue": None,
            "attempts": None,
            "node": "n2",
            "scores": [
                {"node": "n2", "total": 250, "plugins": {"NodeResourcesFit": 90, "Taint": 100}},
                {"node": "n1", "total": 120, "plugins": {"NodeResourcesFit": 40}},
            ],
        }
    )
    assert out.splitlines() == [
        "Pod ns/p: scheduled to n2",
        "",
        "Top nodes (weighted total; each plugin's score 0-100):",
        "NODE  TOTAL  NodeResourcesFit  Taint",
        "n2    250    90                100",
        "n1    120    40                -",
    ]


def test_unknown_pod() -> None:
    out = render({"pod": "ns/p", "queue": None, "attempts": None})
    assert out.startswith("Pod ns/p: this scheduler has not tried to schedule it")


def test_effective_requests_line() -> None:
    """The requests the attempt counted, as quantities: cpu in millicores or cores, the rest in
    the largest exact binary unit or bytes; the pods count left out."""
    out = render(
        {
            "pod": "ns/p",
            "queue": "unschedulable",
            "attempts": 1,
            "message": "0/1 nodes are available: 1 Insufficient cpu.",
            "requests": {
                "cpu": 1500,
                "memory": 3 * 2**30,
                "hugepages-2Mi": 2**21,
                "ephemeral-storage": 1000,
                "pods": 1,
            },
        }
    )
    assert out.splitlines()[:2] == [
        "Pod ns/p: pending (queue: unschedulable, attempts: 1)",
        "Effective requests: cpu 1500m, ephemeral-storage 1000, hugepages-2Mi 2Mi, memory 3Gi",
    ]
    bound = render({"pod": "ns/p", "node": "n1", "requests": {"cpu": 2000, "pods": 1}})
    assert bound.splitlines()[1] == "Effective requests: cpu 2"


def test_pod_waiting_at_permit_is_not_called_scheduled() -> None:
    """A pod parked by a Permit Wait has a node but is not bound: explain says it waits,
    on which node and for which plugins."""
    out = render(
        {
            "pod": "ns/p",
            "queue": "assumed",
            "attempts": 1,
            "node": "n2",
            "waiting": {"node": "n2", "pending_plugins": ["GroupPermit"], "seconds": 12.4},
            "scores": None,
        }
    )
    assert out.splitlines()[0] == (
        "Pod ns/p: waiting at Permit on n2 for plugin(s) GroupPermit (12s so far); not bound yet"
    )


def test_gang_member_shows_why_its_group_does_not_fit() -> None:
    """A member that fitted carries the group's message; the report adds members placed
    against minCount and the rejections of the members that did not fit."""
    out = render(
        {
            "pod": "ns/w-0",
            "queue": "unschedulable",
            "attempts": 1,
            "message": "minCount (8) cannot be satisfied: 6 scheduled, 1 remaining",
            "group": {
                "name": "ns/job",
                "policy": "gang",
                "min_count": 8,
                "queued": 8,
                "scheduled_before": 0,
                "placed": 6,
                "message": "minCount (8) cannot be satisfied: 6 scheduled, 1 remaining",
                "unplaced": ["w-6"],
                "by_plugin": {"NodeResourcesFit": {"Insufficient cpu": 3}},
            },
        }
    )
    assert out.splitlines()[2:] == [
        "",
        "Pod group ns/job (gang, minCount 8):",
        "  last group cycle: 6 of 8 queued members placed, 0 already scheduled; 8 needed",
        "  group: minCount (8) cannot be satisfied: 6 scheduled, 1 remaining;"
        " nothing of this cycle was kept",
        "  members that did not fit: w-6",
        "  their rejections (nodes, summed over those members):",
        "  PLUGIN            REASON            NODES",
        "  NodeResourcesFit  Insufficient cpu  3",
    ]


def test_devices_by_node_from_the_real_diagnosis() -> None:
    """A pod whose claim wants 3 GPUs: explain lists each node with devices (most matching
    first), how many match, how many are in use, what rejected the rest (by the selector's
    expression), then the nodes publishing none."""
    from scheduler.device_classes import DeviceClass
    from scheduler.dra.claims import Claim
    from scheduler.dra.diagnose import diagnose
    from scheduler.dra.slices import SliceStore
    from scheduler.harness import fakedra

    slices = SliceStore()
    slices.apply(fakedra.gpu_slice("a", count=4), deleted=False)
    slices.apply(fakedra.gpu_slice("b", count=4, memory="40Gi"), deleted=False)
    big = 'device.capacity["gpu.example.com"].memory.compareTo(quantity("64Gi")) >= 0'
    obj = fakedra.claim("c", count=3, selectors=[big])
    obj["metadata"].update(namespace="ns", uid="u")
    classes = {fakedra.DRIVER: DeviceClass.compile(fakedra.device_class())}
    in_use = {"gpu.example.com/a/gpu-0", "gpu.example.com/a/gpu-1"}
    nodes = [("a", {}), ("b", {}), ("c", {})]
    views, bare = diagnose([Claim.compile(obj)], nodes, slices.pools_for, classes, in_use)
    view = {
        "pod": "ns/p",
        "message": "0/3 nodes are available: 2 cannot allocate all claims.",
        "devices": [v.to_json() for v in views],
        "nodes_without_devices": bare,
    }
    lines = render(view).splitlines()
    start = lines.index("Devices (DynamicResources), by node:")
    assert [line.split()[:5] for line in lines[start + 1 : start + 4]] == [
        ["NODE", "REQUEST", "WANTS", "MATCH/DEVICES", "IN"],
        ["a", "ns/c/gpu", "3", "2/4", "2"],
        ["b", "ns/c/gpu", "3", "0/4", "0"],
    ]
    assert lines[start + 3].endswith(f"4 claim ns/c selector #0 ({big})")
    assert lines[start + 4] == "1 other node(s) publish no devices"


def test_a_pod_in_pre_bind_is_not_called_scheduled() -> None:
    """Assumed (its PreBind writing volumes or claims): not bound yet, and said so."""
    view = {"pod": "ns/p", "queue": "assumed", "attempts": 1, "node": "n3"}
    assert render(view).splitlines()[0] == (
        "Pod ns/p: assumed on n3, binding (PreBind: volumes or device claims being written and"
        " bound); not bound yet"
    )


def test_a_pod_whose_binding_failed_is_pending() -> None:
    """Back in the queue after a failed binding: pending, with the node its last cycle chose
    and why it waits now."""
    view = {
        "pod": "ns/p",
        "queue": "gated",
        "attempts": 2,
        "node": "n4",
        "gated": 'resourceclaim.resource.k8s.io "named" not found',
    }
    assert render(view).splitlines() == [
        "Pod ns/p: pending (queue: gated, attempts: 2)",
        "Its last scheduling cycle chose n4; binding did not succeed.",
        'Gated: resourceclaim.resource.k8s.io "named" not found',
    ]


def test_devices_name_a_match_attribute_no_group_meets() -> None:
    """Two requests of 2 that must share `index` (every device's index differs): each request
    alone has 4 matching devices, and the table says the constraint is what fails."""
    from scheduler.device_classes import DeviceClass
    from scheduler.dra.claims import Claim
    from scheduler.dra.diagnose import diagnose
    from scheduler.dra.slices import SliceStore
    from scheduler.harness import fakedra

    slices = SliceStore()
    slices.apply(fakedra.gpu_slice("a", count=4), deleted=False)
    obj = fakedra.claim("c", count=2, requests=2, match_attribute="gpu.example.com/index")
    obj["metadata"].update(namespace="ns", uid="u")
    classes = {fakedra.DRIVER: DeviceClass.compile(fakedra.device_class())}
    views, _ = diagnose([Claim.compile(obj)], [("a", {})], slices.pools_for, classes, set())
    lines = render({"pod": "ns/p", "message": "m", "devices": [v.to_json() for v in views]})
    rows = lines.splitlines()[-2:]
    assert rows[0].split()[:5] == ["a", "ns/c/gpu-0", "2", "4/4", "0"]
    assert rows[0].endswith(
        "matchAttribute gpu.example.com/index: at most 1 matching device(s) share a value,"
        " 4 wanted"
    )
    assert rows[1].split()[:6] == ["a", "ns/c/gpu-1", "2", "4/4", "0", "-"]
