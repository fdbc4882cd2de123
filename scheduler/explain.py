"""`berth explain NAMESPACE/POD`: why a pod is pending, or why it went where it went.

It asks a running scheduler for its last attempt at the pod (`GET /debug/pods/NS/NAME` on the
metrics port) and renders it:

- the pod's effective requests as the attempt counted them (pod-level requests and a resize
  in progress included), when the scheduler kept its attempt;
- a pending pod: the upstream FailedScheduling message, then which plugin rejected how many
  nodes for which reason, and what preemption decided (nominated node and victims);
- a bound pod: the top-scoring nodes of the attempt with each score plugin's (normalized)
  score and the weighted total.

Rendering is pure (`render(view) -> str`), so it is tested without a server.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

JSON = dict[str, Any]
DEFAULT_SERVER = "http://127.0.0.1:10259"


class ExplainError(Exception):
    """The scheduler could not be asked (the message says why)."""


def fetch(server: str, namespace: str, name: str, timeout: float = 10.0) -> JSON:
    """The scheduler's debug view of one pod."""
    path = "/debug/pods/{}/{}".format(
        urllib.parse.quote(namespace, safe=""), urllib.parse.quote(name, safe="")
    )
    url = server.rstrip("/") + path
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            view: JSON = json.loads(response.read())
    except urllib.error.HTTPError as err:
        raise ExplainError(f"{url}: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, OSError) as err:
        raise ExplainError(f"cannot reach the scheduler at {server}: {err}") from err
    except ValueError as err:
        raise ExplainError(f"{url}: not JSON: {err}") from err
    return view


def render(view: JSON) -> str:
    """The report for one pod's debug view."""
    pod = view.get("pod", "?")
    lines: list[str] = []
    node = view.get("node")
    queue, attempts = view.get("queue"), view.get("attempts")
    waiting = view.get("waiting")
    if node and waiting:
        plugins = ", ".join(waiting.get("pending_plugins") or [])
        lines.append(
            f"Pod {pod}: waiting at Permit on {node} for plugin(s) {plugins} "
            f"({waiting.get('seconds', 0):.0f}s so far); not bound yet"
        )
    elif node and queue == "assumed":
        lines.append(
            f"Pod {pod}: assumed on {node}, binding (PreBind: volumes or device claims being "
            "written and bound); not bound yet"
        )
    elif node and queue:
        # Still queued: the attempt that chose the node failed to bind since.
        lines.append(f"Pod {pod}: pending (queue: {queue}, attempts: {attempts})")
        lines.append(f"Its last scheduling cycle chose {node}; binding did not succeed.")
        if gated := view.get("gated"):
            lines.append(f"Gated: {gated}")
        return "\n".join(lines) + "\n"
    elif node:
        lines.append(f"Pod {pod}: scheduled to {node}")
    elif "message" in view or queue:
        where = f" (queue: {queue}, attempts: {attempts})" if queue else ""
        lines.append(f"Pod {pod}: pending{where}")
    else:
        return (
            f"Pod {pod}: this scheduler has not tried to schedule it (not its schedulerName, "
            "not seen yet, or too long ago).\n"
        )
    if gated := view.get("gated"):
        lines.append(f"Gated: {gated}")
    if (requests := view.get("requests")) is not None:
        lines.append(f"Effective requests: {_requests(requests)}")
    if node:
        lines += _scores(view.get("scores"))
        return "\n".join(lines) + "\n"
    if message := view.get("message"):
        lines.append(message)
    lines += _rejections(view)
    lines += _group(view.get("group"))
    lines += _devices(view.get("devices"), view.get("nodes_without_devices") or 0)
    if nominated := view.get("nominated_node"):
        victims = view.get("victims") or []
        lines.append("")
        lines.append(f"Preemption: nominated to {nominated}; preempting {len(victims)} pod(s):")
        lines += [f"  {v}" for v in victims]
    return "\n".join(lines) + "\n"


def _requests(requests: Mapping[str, int]) -> str:
    """What the scheduler counts for the pod (containers, init containers, pod-level requests,
    resize state, overhead), as quantities; the pods count, always 1, left out."""
    parts = [
        f"{name} {_quantity(name, amount)}"
        for name, amount in sorted(requests.items())
        if name != "pods"
    ]
    return ", ".join(parts) or "none"


_BINARY = (("Ei", 60), ("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10))


def _quantity(name: str, amount: int) -> str:
    """cpu from millicores ("1500m", "2"); other amounts in the largest exact binary unit."""
    if name == "cpu":
        return str(amount // 1000) if amount % 1000 == 0 else f"{amount}m"
    for suffix, shift in _BINARY:
        if amount and amount % (1 << shift) == 0:
            return f"{amount >> shift}{suffix}"
    return str(amount)


def _rejections(view: JSON) -> list[str]:
    rows: list[tuple[str, str, str]] = []
    pre_filter = view.get("pre_filter")
    if pre_filter:
        rows.append((pre_filter.get("plugin") or "PreFilter", pre_filter.get("reason", ""), "all"))
    by_plugin: JSON = view.get("by_plugin") or {}
    for plugin, reasons in by_plugin.items():
        for reason, count in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            rows.append((plugin, reason, str(count)))
    if not rows:
        return []
    total = view.get("total_nodes")
    out = ["", f"Rejected nodes by plugin (of {total} nodes):" if total else "Rejections:"]
    out += _table(("PLUGIN", "REASON", "NODES"), rows)
    return out


def _devices(views: Sequence[JSON] | None, bare: int) -> list[str]:
    """DynamicResources: for each node with devices (most matching first) and each request
    of the pod's unallocated claims, the devices there, how many match, how many other claims
    hold, and what rejected the rest (a selector, by its expression); then how many nodes
    publish no devices at all."""
    if not views:
        return (
            ["", f"Devices (DynamicResources): none published on any of {bare} node(s)"]
            if bare
            else []
        )
    rows = []
    for v in views:
        rejected = "; ".join(
            f"{n} {why}" if n else why for why, n in sorted(v.get("rejected", {}).items())
        )
        rows.append(
            (
                str(v.get("node")),
                str(v.get("request")),
                str(v.get("wanted")),
                f"{v.get('matching')}/{v.get('devices')}",
                str(v.get("in_use")),
                rejected or "-",
            )
        )
    header = ("NODE", "REQUEST", "WANTS", "MATCH/DEVICES", "IN USE", "REJECTED BY")
    out = ["", "Devices (DynamicResources), by node:", *_table(header, rows)]
    if bare:
        out.append(f"{bare} other node(s) publish no devices")
    return out


def _group(group: JSON | None) -> list[str]:
    """A PodGroup member's last group cycle: members placed against minCount, and why the
    members that were not placed did not fit (all or nothing: none of the group is bound)."""
    if not group:
        return []
    name, policy, minimum = group.get("name"), group.get("policy"), group.get("min_count")
    out = ["", f"Pod group {name} ({policy}, minCount {minimum}):"]
    if "placed" in group:
        before = group.get("scheduled_before", 0)
        out.append(
            f"  last group cycle: {group.get('placed')} of {group.get('queued')} queued members "
            f"placed, {before} already scheduled; {minimum} needed"
        )
    if topology := group.get("topology_key"):
        out.append(f"  all members in one domain of node label {topology}")
    if group.get("message"):
        out.append(f"  group: {group['message']}; nothing of this cycle was kept")
    unplaced = group.get("unplaced") or []
    if unplaced:
        shown = ", ".join(unplaced[:10]) + (" ..." if len(unplaced) > 10 else "")
        out.append(f"  members that did not fit: {shown}")
    rows = [
        (plugin, reason, str(count))
        for plugin, reasons in (group.get("by_plugin") or {}).items()
        for reason, count in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    if rows:
        out.append("  their rejections (nodes, summed over those members):")
        out += ["  " + line for line in _table(("PLUGIN", "REASON", "NODES"), rows)]
    return out


def _scores(scores: Sequence[JSON] | None) -> list[str]:
    if not scores:
        return ["No scores kept for this attempt (a single feasible node is not scored)."]
    plugins: list[str] = []
    for entry in scores:
        for plugin in entry.get("plugins", {}):
            if plugin not in plugins:
                plugins.append(plugin)
    rows = [
        (
            entry.get("node", "?"),
            str(entry.get("total", "")),
            *(str(entry.get("plugins", {}).get(p, "-")) for p in plugins),
        )
        for entry in scores
    ]
    title = "Top nodes (weighted total; each plugin's score 0-100):"
    return ["", title, *_table(("NODE", "TOTAL", *plugins), rows)]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    return [
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]


def main(target: str, server: str = DEFAULT_SERVER) -> int:
    """Print the report; 0 when the scheduler answered, 1 when it could not be asked, 2 for a
    malformed target."""
    import sys

    namespace, sep, name = target.partition("/")
    if not sep or not namespace or not name:
        print("berth explain: give the pod as NAMESPACE/NAME", file=sys.stderr)
        return 2
    try:
        view = fetch(server, namespace, name)
    except ExplainError as err:
        print(f"berth explain: {err}", file=sys.stderr)
        return 1
    sys.stdout.write(render(view))
    return 0
