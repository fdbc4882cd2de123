"""`berth sim shards`: the shards of a Helm values file, each simulated on its node pool.

The values are read as the chart reads them (helm/berth/templates/_helpers.tpl "berth.shard"):
each shard is shardDefaults merged with its own keys (maps merge, lists replace), and its
KubeSchedulerConfiguration is the chart's base (one profile named after schedulerName, the
shard's nodeSelector as berth's nodeSelector) with the shard's `config` merged over it. Pods
are routed as in a cluster: a pod naming a shard's schedulerName goes there; a pod left at
default-scheduler goes where the values' webhook rules send it (scheduler.webhook.decide,
namespace labels from the snapshot), or, without rules, to the shards in turn.

Each shard is one simulation (scheduler.sim.engine) of its own pods on the whole snapshot,
where berth's nodeSelector keeps only the shard's nodes, as `berth run` does. Pods arrive at
`--rate` per second per shard (or all at once); what is reported per shard is its nodes, pods,
placed, pending, pods/s, and the latency from arrival to bind (p50, p99, max), which is how
to size shards: a shard keeps up with its rate when its p99 stays small and its pods/s at the
rate.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from scheduler.sim.snapshot import ClusterSnapshot

JSON = dict[str, Any]


class ValuesError(Exception):
    """The values file cannot be used; the message names the field."""


@dataclass(frozen=True)
class Shard:
    name: str
    scheduler_name: str
    node_selector: Mapping[str, str]
    config: JSON  # the whole KubeSchedulerConfiguration document


def _merge(base: JSON, over: Mapping[str, Any]) -> JSON:
    """Sprig's mustMergeOverwrite as the chart uses it: maps merge, everything else replaces."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_values(path: Path) -> tuple[list[Shard], Any]:
    """The shards of a values file, and its webhook rules document (None when the webhook is
    off or has no rules). ValuesError names the file and field."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ValuesError(f"{path}: {err}") from None
    if not isinstance(doc, dict):
        raise ValuesError(f"{path}: expected a mapping")
    defaults = doc.get("shardDefaults") or {}
    raw = doc.get("shards")
    if not isinstance(raw, list) or not raw:
        raise ValuesError(f"{path}: shards: expected a non-empty list")
    shards = []
    names: set[tuple[str, str]] = set()
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not item.get("name") or not item.get("schedulerName"):
            raise ValuesError(f"{path}: shards[{i}]: name and schedulerName are required")
        for field_name in ("name", "schedulerName"):
            if (field_name, item[field_name]) in names:
                raise ValuesError(
                    f"{path}: shards[{i}].{field_name}: {item[field_name]} is used twice"
                )
            names.add((field_name, item[field_name]))
        merged = _merge(defaults if isinstance(defaults, dict) else {}, item)
        selector = merged.get("nodeSelector") or {}
        if not isinstance(selector, dict):
            raise ValuesError(f"{path}: shards[{i}].nodeSelector: expected a mapping")
        base: JSON = {
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "KubeSchedulerConfiguration",
            "leaderElection": {"leaderElect": False},
            "profiles": [{"schedulerName": merged["schedulerName"]}],
        }
        if selector:
            base["nodeSelector"] = selector
        config = _merge(base, merged.get("config") or {})
        shards.append(
            Shard(str(merged["name"]), str(merged["schedulerName"]), dict(selector), config)
        )
    webhook = doc.get("webhook") or {}
    rules = webhook.get("rules") if isinstance(webhook, dict) and webhook.get("enabled") else None
    return shards, ({"rules": rules} if rules else None)


def route(
    pods: Sequence[JSON], shards: Sequence[Shard], rules_doc: Any, snapshot: ClusterSnapshot
) -> dict[str, list[JSON]]:
    """Shard name -> its pods (copies, schedulerName set). Raises ValuesError for bad rules."""
    from scheduler.webhook import RulesError, decide, parse_rules

    rules = []
    if rules_doc is not None:
        try:
            rules = parse_rules(rules_doc)
        except RulesError as err:
            raise ValuesError(f"webhook.rules: {err}") from None
    labels = {
        str((ns.get("metadata") or {}).get("name")): (ns.get("metadata") or {}).get("labels") or {}
        for ns in snapshot.of("namespaces")
    }
    by_name = {s.scheduler_name: s.name for s in shards}
    out: dict[str, list[JSON]] = {s.name: [] for s in shards}
    turn = 0
    for pod in pods:
        name = (pod.get("spec") or {}).get("schedulerName") or "default-scheduler"
        if name not in by_name and name != "default-scheduler":
            continue  # another scheduler's pod: no shard places it
        if name not in by_name and rules:
            ns = str((pod.get("metadata") or {}).get("namespace") or "default")
            decision = decide(rules, pod, labels.get(ns, {}))
            name = decision.scheduler_name or name
        if name not in by_name:
            if rules:
                continue  # left to a scheduler that is not one of the shards
            name = shards[turn % len(shards)].scheduler_name
            turn += 1
        routed = copy.deepcopy(pod)
        routed["spec"]["schedulerName"] = name
        out[by_name[name]].append(routed)
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]
