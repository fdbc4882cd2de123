"""`berth explain NAMESPACE/POD [--node NODE]`: why a pod is pending, why it went where it
went, or why it does not go to one node.

It asks the leading berth (found through its Lease, or the one `--server` names:
scheduler.explain_client) for its last attempt at the pod (`GET /debug/pods/NS/NAME`) and
renders it:

- the pod's effective requests as the attempt counted them (pod-level requests and a resize
  in progress included), when the scheduler kept its attempt;
- a pending pod: the upstream FailedScheduling message, then which plugin rejected how many
  nodes for which reason, and what preemption decided (nominated node and victims);
- a bound pod: the top-scoring nodes of the attempt with each score plugin's (normalized)
  score and the weighted total;
- with `--node X` (the view's "node_check", scheduler.node_verdict): each Filter plugin's
  verdict on X now, and the score X would get among the feasible nodes.

Rendering is pure (`render(view) -> str`), so it is tested without a server. The arguments live
here too (`add_arguments`), as `berth explain` and `kubectl berth explain` share them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Any

JSON = dict[str, Any]

DEFAULT_LEASE_NAMESPACE = "berth-system"
DEFAULT_LEASE_NAME = "berth"
"""deploy/configmap.yaml's leaderElection.resourceNamespace/resourceName (the chart names the
Lease after the release, in the release namespace: pass those)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`berth explain`'s arguments."""
    parser.add_argument("pod", metavar="NAMESPACE/POD")
    parser.add_argument(
        "--node",
        default=None,
        help="also say, for a pending pod, what each Filter plugin says about this node now"
        " and the score it would get there",
    )
    parser.add_argument(
        "--server",
        default=None,
        help="ask this berth (http://HOST:PORT or https://HOST:PORT) instead of the leader"
        " its Lease names",
    )
    parser.add_argument("--kubeconfig", default=None, help="default: $KUBECONFIG, then in-cluster")
    parser.add_argument(
        "--lease-namespace",
        default=DEFAULT_LEASE_NAMESPACE,
        help="leaderElection.resourceNamespace of the berth to ask (default %(default)s)",
    )
    parser.add_argument(
        "--lease-name",
        default=DEFAULT_LEASE_NAME,
        help="leaderElection.resourceName of the berth to ask (default %(default)s)",
    )
    parser.add_argument(
        "--certificate-authority",
        default=None,
        metavar="FILE",
        help="CA bundle that signed berth's serving certificate (default: the certificate"
        " the Lease pins, else the system's CAs)",
    )
    parser.add_argument(
        "--insecure-skip-tls-verify",
        action="store_true",
        help="accept any certificate from berth (your credentials go to whoever answers)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="for each connection and answer (default %(default)s)",
    )


def main(args: argparse.Namespace) -> int:
    """Print the report; 0 when the scheduler answered, 1 when it could not be asked, 2 for
    bad arguments."""
    from scheduler.explain_client import ExplainError, Options, ask

    namespace, sep, name = args.pod.partition("/")
    problem = ""
    if not sep or not namespace or not name or "/" in name:
        problem = f"NAMESPACE/POD: give the pod as NAMESPACE/NAME, not {args.pod!r}"
    elif args.node is not None and not args.node:
        problem = "--node: must name a node"
    elif not args.timeout > 0:  # NaN fails every comparison
        problem = "--timeout: must be a number of seconds > 0"
    elif args.server is not None and not args.server.startswith(("http://", "https://")):
        problem = f"--server: must be an http:// or https:// URL, not {args.server!r}"
    if problem:
        print(f"berth explain: {problem}", file=sys.stderr)
        return 2
    options = Options(
        server=args.server,
        kubeconfig=args.kubeconfig,
        lease_namespace=args.lease_namespace,
        lease_name=args.lease_name,
        certificate_authority=args.certificate_authority,
        insecure_skip_tls_verify=args.insecure_skip_tls_verify,
        timeout=args.timeout,
    )
    try:
        view, where = ask(options, namespace, name, args.node)
    except ExplainError as err:
        print(f"berth explain: {err}", file=sys.stderr)
        return 1
    sys.stdout.write(render(view))
    print(f"berth explain: answered by {where}", file=sys.stderr)
    return 0


def render(view: JSON) -> str:
    """The report for one pod's debug view (then the node check, when it has one)."""
    report = _render_pod(view)
    if "node_check" in view:
        report += "\n" + render_node(view["node_check"])
    return report


def _answered_by(view: JSON) -> list[str]:
    """Which replica answered (views of berth before this field have none)."""
    replica = view.get("scheduler")
    if not replica:
        return []
    role = (
        "the leader"
        if replica.get("leading")
        else "a standby: it schedules nothing while another replica leads"
    )
    return [f"Answered by {replica.get('identity')} ({role})"]


def _render_pod(view: JSON) -> str:
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
        lines += _answered_by(view)
        if gated := view.get("gated"):
            lines.append(f"Gated: {gated}")
        return "\n".join(lines) + "\n"
    elif node:
        lines.append(f"Pod {pod}: scheduled to {node}")
    elif "message" in view or queue:
        where = f" (queue: {queue}, attempts: {attempts})" if queue else ""
        lines.append(f"Pod {pod}: pending{where}")
    else:
        lines.append(
            f"Pod {pod}: this scheduler has not tried to schedule it (not its schedulerName, "
            "not seen yet, or too long ago)."
        )
        return "\n".join(lines + _answered_by(view)) + "\n"
    lines += _answered_by(view)
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


def render_node(check: JSON) -> str:
    """The report for one node (scheduler.node_verdict's shape): each Filter plugin's verdict,
    then the score the node would get, or why it cannot be checked."""
    node = check.get("node", "?")
    if error := check.get("error"):
        return f"Node {node}: cannot be checked: {error}\n"
    if pre_filter := check.get("pre_filter"):
        return (
            f"Node {node}: no Filter ran: PreFilter plugin {pre_filter.get('plugin')} rejects"
            f" every node for this pod: {pre_filter.get('reason')}\n"
        )
    lines = [f"Node {node}, each Filter plugin's verdict for this pod now:"]
    rows = []
    for entry in check.get("filters") or []:
        reasons = "; ".join(entry.get("reasons") or [])
        if entry.get("verdict") == "skip":
            reasons = "nothing to check for this pod (PreFilter: Skip)"
        if entry.get("unresolvable"):
            reasons += " (unresolvable: preemption cannot help)"
        if entry.get("with_nominated"):
            reasons += " (only with the pods nominated to this node counted)"
        rows.append((str(entry.get("plugin")), str(entry.get("verdict")), reasons))
    lines += _table(("PLUGIN", "VERDICT", "REASON"), rows)
    if nominated := check.get("nominated"):
        lines.append(
            f"Pods nominated to {node} and counted against this pod: {', '.join(nominated)}"
        )
    failed = sum(1 for e in check.get("filters") or [] if e.get("verdict") == "fail")
    if not check.get("feasible"):
        lines.append(f"Not feasible: {failed} plugin(s) reject {node}.")
        return "\n".join(lines) + "\n"
    lines += _node_score(node, check.get("score"))
    return "\n".join(lines) + "\n"


def _node_score(node: str, score: JSON | None) -> list[str]:
    if not score:
        return [f"Feasible: every Filter plugin passes {node}."]
    if error := score.get("error"):
        return [f"Feasible; its score cannot be told: {error}"]
    best = score.get("best") or {}
    out = [
        "",
        f"Feasible; it would score {score.get('total')} (rank {score.get('rank')} of"
        f" {score.get('feasible_nodes')} feasible nodes; the best, {best.get('node')},"
        f" scores {best.get('total')}):",
    ]
    weights = score.get("weights") or {}
    rows = [
        (plugin, str(value), str(weights.get(plugin, "")))
        for plugin, value in (score.get("plugins") or {}).items()
    ]
    return out + _table(("PLUGIN", "SCORE (0-100)", "WEIGHT"), rows)
