"""`berth sim place` and `berth sim capacity` (docs/sim.md): the commands' bodies."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from scheduler.sim.common import (
    UsageError,
    emit,
    expand_manifests,
    prepare,
    run_sim,
)

if TYPE_CHECKING:
    from scheduler.config import SchedulerConfig
    from scheduler.sim.snapshot import ClusterSnapshot

JSON = dict[str, Any]


def place(args: argparse.Namespace) -> int:
    from scheduler.sim import manifests, report, whatif
    from scheduler.sim.engine import owners

    docs = manifests.read(args.filename)  # a bad file fails before the cluster is listed
    base_config, other_config, snap, other, notes, source = prepare(args, "place")
    expanded = expand_manifests(args, snap, docs)
    if not expanded.pods:
        print("berth sim: the manifests make no pods", file=sys.stderr)
    added = {**expanded.objects, "pods": expanded.pods}
    scenarios = []
    runs: list[tuple[str, ClusterSnapshot, SchedulerConfig, list[str]]] = [
        ("base", snap, base_config, [])
    ]
    if other is not None:
        runs.append(("what-if", other, other_config, notes))
    for title, cluster, config, lines in runs:
        full = whatif.with_objects(cluster, added)
        outcome = run_sim(full, config, args.seed, title, order=args.order)
        given_nodes(outcome, expanded.pods, full)
        owner_of = {**owners(full.of("pods")), **expanded.owner_of}
        scenarios.append(report.Scenario(title, outcome, owner_of, lines))
    emit(args, scenarios, source)
    return 0


def given_nodes(outcome: Any, pods: list[JSON], cluster: ClusterSnapshot) -> None:
    """Manifest pods that name their node (spec.nodeName) skip the scheduler: they are
    reported where they were put, or as invalid when the node does not exist (the kubelet
    would never run them)."""
    nodes = {str((n.get("metadata") or {}).get("name")) for n in cluster.of("nodes")}
    for pod in pods:
        node = pod["spec"].get("nodeName")
        if node:
            key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
            if node in nodes:
                outcome.placed[key] = node
            else:
                outcome.invalid[key] = f"spec.nodeName: no node named {node}"


def capacity(args: argparse.Namespace) -> int:
    import orjson

    from scheduler.sim import capacity, manifests, report, whatif

    if args.max is not None and args.max < 1:
        raise UsageError("--max: must be at least 1")
    docs = manifests.read([args.filename])  # a bad file fails before the cluster is listed
    base_config, other_config, snap, other, notes, source = prepare(args, "capacity")
    expanded = expand_manifests(args, snap, docs)
    if not expanded.pods:
        raise UsageError(f"-f {args.filename}: no pod or pod template in it")
    template = expanded.pods[0]
    if len(expanded.pods) > 1:
        print(
            f"berth sim: capacity counts copies of one pod: the first of {len(expanded.pods)}"
            f" in {args.filename} ({template['metadata']['name']})",
            file=sys.stderr,
        )
    name = expanded.owner_of[f"{template['metadata']['namespace']}/{template['metadata']['name']}"]
    if template["spec"].pop("nodeName", None):
        print("berth sim: capacity ignores the template's spec.nodeName", file=sys.stderr)
    served = [p.scheduler_name for p in base_config.profiles]
    if template["spec"]["schedulerName"] not in served:
        print(
            f"berth sim: the template names scheduler {template['spec']['schedulerName']};"
            f" its copies go to profile {served[0]}",
            file=sys.stderr,
        )
        template["spec"]["schedulerName"] = served[0]
    claims = {c["metadata"]["name"]: c for c in expanded.objects.pop("persistentvolumeclaims", [])}
    group_by = args.group_by or report.ZONE
    runs: list[tuple[str, ClusterSnapshot, SchedulerConfig, list[str]]] = [
        ("base", snap, base_config, [])
    ]
    if other is not None:
        runs.append(("what-if", other, other_config, notes))
    results: list[tuple[str, Any, Any]] = []
    for title, cluster, config, lines in runs:
        bound = capacity.upper_bound(cluster, template)
        limit = args.max if args.max is not None else capacity.DEFAULT_MAX
        offered = min(bound + 1, limit)
        pods, pvcs = capacity.copies(template, offered, claims)
        added = {**expanded.objects, "pods": pods, "persistentvolumeclaims": pvcs}
        full = whatif.with_objects(cluster, added)
        outcome = run_sim(full, config, args.seed, f"{title}: {offered:,} copies")
        cap = capacity.summarise(outcome, template, offered, bound + 1 > limit, group_by)
        results.append((title, cap, report.Scenario(title, outcome, {}, lines)))
    if not any(group_by in u.labels for _, _, s in results for u in s.outcome.nodes.values()):
        print(f"berth sim: --group-by: no node has label {group_by}", file=sys.stderr)
    if args.output == "json":
        doc = {
            "cluster": source,
            "pod": name,
            "groupBy": group_by,
            "scenarios": [
                {
                    "title": t,
                    "notes": list(s.notes),
                    "fits": c.fits,
                    "atLeast": c.capped,
                    "stopMessage": c.stop_message,
                    "groups": {
                        g: {"nodes": v.nodes, "fits": v.fits, "nodesFull": dict(v.limits)}
                        for g, v in sorted(c.groups.items())
                    },
                }
                for t, c, s in results
            ],
        }
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(f"# berth sim capacity: {source}\n")
        for title, cap, s in results:
            print(f"### {title}" + "".join(f"\n- {n}" for n in s.notes) + "\n")
            print(capacity.markdown(cap, name, group_by))
    if args.png is not None:
        out = argparse.Namespace(**{**vars(args), "output": "none"})
        emit(out, [s for _, _, s in results], source)
    return 0
