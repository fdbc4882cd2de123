"""What `berth sim` prints: tables (markdown), JSON, and a utilisation chart (PNG).

    placement   per owner (Deployment/ns/web, Job/..., Pod/...): pods, placed, pending, and
                the nodes it went to with counts; then every distinct pending message with
                the pods it holds; then the pods preemption would evict
    comparison  base vs what-if: per owner placed/pending, pods that land elsewhere, and per
                node (or per zone, past NODES_PER_ROW_LIMIT nodes) CPU and memory requested
                as a share of allocatable: before, after base, after what-if
    capacity    per group (zone by default): nodes, how many more fit, what runs out

The JSON carries the same facts, per pod. The chart needs matplotlib (the `bench` extra).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scheduler.sim.engine import NodeUse, Outcome

JSON = dict[str, Any]

NODES_PER_ROW_LIMIT = 40
ZONE = "topology.kubernetes.io/zone"


@dataclass(frozen=True)
class Scenario:
    """One simulated run: its title ("base", "what-if") and what it added to the cluster."""

    title: str
    outcome: Outcome
    owner_of: Mapping[str, str]  # pod key -> "Kind/ns/name"
    notes: Sequence[str] = ()


def _owner(s: Scenario, pod: str) -> str:
    return s.owner_of.get(pod, f"Pod/{pod}")


def placement_markdown(s: Scenario) -> str:
    o = s.outcome
    lines = [
        f"## {s.title}: {len(o.placed):,} placed, {len(o.pending):,} pending, "
        f"{len(o.preempted):,} preempted ({o.seconds:.2f} s, {o.cycles:,} cycles)",
        "",
    ]
    lines += [f"- {n}" for n in s.notes]
    if o.ignored:
        names = ", ".join(f"{name} ({n:,})" for name, n in sorted(o.ignored.items()))
        lines.append(
            "- pending pods of schedulers this configuration has no profile for, not "
            f"simulated: {names}"
        )
    if s.notes or o.ignored:
        lines.append("")
    placed: dict[str, Counter[str]] = defaultdict(Counter)
    pending: Counter[str] = Counter()
    for pod, node in o.placed.items():
        placed[_owner(s, pod)][node] += 1
    for pod in o.pending:
        pending[_owner(s, pod)] += 1
    lines += ["| owner | pods | placed | pending | nodes |", "|---|--:|--:|--:|---|"]
    for owner in sorted(set(placed) | set(pending)):
        nodes = placed[owner]
        where = ", ".join(f"{n} x{c}" if c > 1 else n for n, c in sorted(nodes.items()))
        if len(where) > 120:
            where = f"{len(nodes)} nodes"
        total = sum(nodes.values()) + pending[owner]
        lines.append(
            f"| {owner} | {total:,} | {sum(nodes.values()):,} | {pending[owner]:,} | {where} |"
        )
    if o.pending:
        lines += ["", "| pending | pods | message |", "|---|--:|---|"]
        by_message: dict[tuple[str, str], list[str]] = defaultdict(list)
        for pod, message in o.pending.items():
            by_message[(_owner(s, pod), message)].append(pod)
        for (owner, message), pods in sorted(by_message.items()):
            nominated = {o.nominated[p] for p in pods if p in o.nominated}
            extra = f" (nominated: {', '.join(sorted(nominated))})" if nominated else ""
            lines.append(f"| {owner} | {len(pods):,} | {message}{extra} |")
    if o.invalid:
        lines += ["", "| invalid pod | why |", "|---|---|"]
        lines += [f"| {p} | {why} |" for p, why in sorted(o.invalid.items())]
    if o.preempted:
        lines += ["", "| preempted | on node | for |", "|---|---|---|"]
        lines += [f"| {p.victim} | {p.node} | {p.preemptor} |" for p in o.preempted]
    return "\n".join(lines) + "\n"


def _share(used: int, total: int) -> str:
    return f"{100.0 * used / total:.0f}%" if total > 0 else "-"


def utilisation_rows(nodes: Mapping[str, NodeUse], group_by: str = "") -> dict[str, list[int]]:
    """name -> [cpu allocatable, cpu before, cpu after, memory allocatable, before, after]
    (millicores, bytes; requested), in name order, per node, or per value of label
    `group_by` ("" = per node; past NODES_PER_ROW_LIMIT nodes the zone label is used)."""
    key = group_by or (ZONE if len(nodes) > NODES_PER_ROW_LIMIT else "")
    rows: dict[str, list[int]] = {}
    for name, use in nodes.items():
        label = use.labels.get(key, "(none)") if key else name
        r = rows.setdefault(label, [0] * 6)
        for i, v in enumerate(
            (
                use.cpu,
                use.cpu_before,
                use.cpu_after,
                use.memory,
                use.memory_before,
                use.memory_after,
            )
        ):
            r[i] += v
    return dict(sorted(rows.items()))


def comparison_markdown(base: Scenario, other: Scenario) -> str:
    lines = [f"## {base.title} vs {other.title}", ""]
    owners = sorted(
        {_owner(base, p) for p in [*base.outcome.placed, *base.outcome.pending]}
        | {_owner(other, p) for p in [*other.outcome.placed, *other.outcome.pending]}
    )
    lines += [
        "| owner | placed (base) | placed (what-if) | pending (base) | pending (what-if) |",
        "|---|--:|--:|--:|--:|",
    ]
    for owner in owners:
        counts = [
            sum(1 for p in s.outcome.placed if _owner(s, p) == owner) for s in (base, other)
        ] + [sum(1 for p in s.outcome.pending if _owner(s, p) == owner) for s in (base, other)]
        lines.append(f"| {owner} | " + " | ".join(f"{c:,}" for c in counts) + " |")
    moved = [p for p, n in base.outcome.placed.items() if other.outcome.placed.get(p, n) != n]
    lines += ["", f"{len(moved):,} pods placed in both land on another node.", ""]
    lines += [
        "| node | CPU before | base | what-if | memory before | base | what-if |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    b = utilisation_rows(base.outcome.nodes)
    w = utilisation_rows(other.outcome.nodes)
    for name in sorted(set(b) | set(w)):
        rb, rw = b.get(name), w.get(name)
        ref = rb or rw
        assert ref is not None
        lines.append(
            f"| {name} | {_share(ref[1], ref[0])} | {_share(rb[2], rb[0]) if rb else '-'} "
            f"| {_share(rw[2], rw[0]) if rw else '-'} | {_share(ref[4], ref[3])} "
            f"| {_share(rb[5], rb[3]) if rb else '-'} | {_share(rw[5], rw[3]) if rw else '-'} |"
        )
    return "\n".join(lines) + "\n"


def to_json(scenarios: Sequence[Scenario]) -> JSON:
    out: JSON = {"scenarios": []}
    for s in scenarios:
        o = s.outcome
        out["scenarios"].append(
            {
                "title": s.title,
                "notes": list(s.notes),
                "seconds": round(o.seconds, 4),
                "cycles": o.cycles,
                "ignoredPods": o.ignored,
                "pods": [
                    {"pod": p, "owner": _owner(s, p), "node": n}
                    for p, n in sorted(o.placed.items())
                ]
                + [
                    {
                        "pod": p,
                        "owner": _owner(s, p),
                        "node": None,
                        "message": m,
                        "nominatedNode": o.nominated.get(p),
                    }
                    for p, m in sorted(o.pending.items())
                ],
                "invalid": o.invalid,
                "preempted": [asdict(p) for p in o.preempted],
                "nodes": {name: _camel(asdict(u)) for name, u in o.nodes.items()},
            }
        )
    return out


def _camel(fields: Mapping[str, Any]) -> JSON:
    """cpu_before -> cpuBefore: the JSON's keys in the API's style."""
    out = {}
    for key, value in fields.items():
        head, *rest = key.split("_")
        out[head + "".join(w.title() for w in rest)] = value
    return out


def chart(scenarios: Sequence[Scenario], path: Path, group_by: str = "") -> None:
    """A PNG: CPU and memory requested / allocatable per node (or group), before and after
    each scenario. Raises ImportError when matplotlib is missing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = utilisation_rows(scenarios[0].outcome.nodes, group_by)
    names = list(first)
    fig, axes = plt.subplots(2, 1, figsize=(max(8.0, 0.35 * len(names) + 4), 7), sharex=True)
    width = 0.8 / (len(scenarios) + 1)
    for ax, (alloc, before, after, title) in zip(
        axes,
        ((0, 1, 2, "CPU requested / allocatable"), (3, 4, 5, "memory requested / allocatable")),
        strict=True,
    ):
        xs = range(len(names))
        ax.bar(
            [x - 0.4 + width / 2 for x in xs],
            [100 * r[before] / r[alloc] if r[alloc] else 0 for r in first.values()],
            width,
            label="before",
            color="#9e9e9e",
        )
        for i, s in enumerate(scenarios, start=1):
            rows = utilisation_rows(s.outcome.nodes, group_by)
            ax.bar(
                [x - 0.4 + width / 2 + i * width for x in xs],
                [
                    100 * rows[n][after] / rows[n][alloc] if n in rows and rows[n][alloc] else 0
                    for n in names
                ],
                width,
                label=f"after ({s.title})",
            )
        ax.set_ylabel("%")
        ax.set_title(title)
        ax.set_ylim(0, 105)
        ax.legend(loc="upper right", fontsize=8)
    axes[-1].set_xticks(list(range(len(names))))
    axes[-1].set_xticklabels(names, rotation=60, ha="right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
