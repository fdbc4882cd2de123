"""A small, real scheduler extender for tests: an aiohttp server speaking extender/v1.

- filter: a node passes when its label `label` has one of the `allowed` values (a pod may
  name its own, comma-separated, in the annotation `ALLOWED`); the others are answered in
  FailedNodes with `MESSAGE` (or FailedAndUnresolvableNodes when `unresolvable`).
- prioritize: a node scores `scores[<its label score_label>]` (0 if absent), in [0, 10].
- bind: POSTs the Binding through `bind_client` (a scheduler.kube Client) when given, else
  records the call only.
- preempt: passes every candidate unchanged (as NodeNameToMetaVictims), or drops the nodes
  in `refuse_preemption_on`.

Nodes come as a NodeList (their labels read from it) or, for a nodeCacheCapable config, as
NodeNames (their labels read from `node_labels`). Every request is kept in `calls` as
(verb, pod name, node names). `fail_with` makes every verb answer that HTTP status.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

JSON = dict[str, Any]
MESSAGE = "node(s) were rejected by the test extender"
ALLOWED = "test-extender/allowed"


@dataclass
class TestExtender:
    label: str = "topology.kubernetes.io/zone"
    allowed: frozenset[str] = frozenset()
    score_label: str = "kubernetes.io/hostname"
    scores: Mapping[str, int] = field(default_factory=dict)
    unresolvable: bool = False
    node_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    bind_client: Any = None
    refuse_preemption_on: frozenset[str] = frozenset()
    fail_with: int = 0
    answers: Mapping[str, Any] = field(default_factory=dict)  # verb -> JSON sent as it is
    delay: float = 0.0  # seconds each answer waits (to let a test change the cluster)
    calls: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    url: str = ""

    __test__ = False  # not a pytest class

    async def start(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> str:
        """Serve on a free port (HTTPS with `tls`); returns the urlPrefix
        (http[s]://host:port/ext)."""
        app = web.Application()
        for verb, handler in (
            ("filter", self._filter),
            ("prioritize", self._prioritize),
            ("bind", self._bind),
            ("preempt", self._preempt),
        ):
            app.router.add_post(f"/ext/{verb}", handler)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, 0, ssl_context=tls)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"{'https' if tls else 'http'}://{host}:{port}/ext"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def verbs(self, pod: str) -> list[str]:
        return [verb for verb, name, _ in self.calls if name == pod]

    # --- verbs -------------------------------------------------------------------------------

    async def _read(
        self, request: web.Request, verb: str
    ) -> tuple[JSON, list[str], dict[str, dict[str, str]]]:
        args = await request.json()
        labels: dict[str, dict[str, str]] = {}
        if args.get("NodeNames") is not None:
            names = list(args["NodeNames"])
            labels = {n: dict(self.node_labels.get(n, {})) for n in names}
        else:
            items = (args.get("Nodes") or {}).get("items") or []
            names = [i["metadata"]["name"] for i in items]
            labels = {i["metadata"]["name"]: i["metadata"].get("labels") or {} for i in items}
        pod = (args.get("Pod") or {}).get("metadata", {}).get("name", "")
        self.calls.append((verb, pod, tuple(names)))
        if self.delay:
            await asyncio.sleep(self.delay)
        return args, names, labels

    async def _filter(self, request: web.Request) -> web.Response:
        if self.fail_with:
            return web.Response(status=self.fail_with)
        if "filter" in self.answers:
            return web.json_response(self.answers["filter"])
        args, names, labels = await self._read(request, "filter")
        annotations = ((args.get("Pod") or {}).get("metadata") or {}).get("annotations") or {}
        allowed = self.allowed
        if ALLOWED in annotations:
            allowed = frozenset(annotations[ALLOWED].split(","))
        passed = [n for n in names if labels[n].get(self.label) in allowed]
        failed = {n: MESSAGE for n in names if n not in passed}
        out: JSON = {
            "FailedNodes": {} if self.unresolvable else failed,
            "FailedAndUnresolvableNodes": failed if self.unresolvable else {},
            "Error": "",
        }
        if args.get("NodeNames") is not None:
            out["NodeNames"] = passed
        else:
            items = args["Nodes"]["items"]
            out["Nodes"] = {"items": [i for i in items if i["metadata"]["name"] in passed]}
        return web.json_response(out)

    async def _prioritize(self, request: web.Request) -> web.Response:
        if self.fail_with:
            return web.Response(status=self.fail_with)
        if "prioritize" in self.answers:
            return web.json_response(self.answers["prioritize"])
        _, names, labels = await self._read(request, "prioritize")
        return web.json_response(
            [
                {"Host": n, "Score": self.scores.get(labels[n].get(self.score_label, ""), 0)}
                for n in names
            ]
        )

    async def _bind(self, request: web.Request) -> web.Response:
        if self.fail_with:
            return web.Response(status=self.fail_with)
        args = await request.json()
        self.calls.append(("bind", args["PodName"], (args["Node"],)))
        error = ""
        if self.bind_client is not None:
            binding = {
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": args["PodName"], "uid": args["PodUID"]},
                "target": {"apiVersion": "v1", "kind": "Node", "name": args["Node"]},
            }
            try:
                path = f"/api/v1/namespaces/{args['PodNamespace']}/pods/{args['PodName']}/binding"
                await self.bind_client.post(path, binding)
            except Exception as err:  # the extender reports it, as a real one would
                error = str(err)
        return web.json_response({"Error": error})

    async def _preempt(self, request: web.Request) -> web.Response:
        if self.fail_with:
            return web.Response(status=self.fail_with)
        args = await request.json()
        pod = (args.get("Pod") or {}).get("metadata", {}).get("name", "")
        meta: JSON = {}
        if args.get("NodeNameToMetaVictims") is not None:
            meta = dict(args["NodeNameToMetaVictims"])
        else:
            for node, victims in (args.get("NodeNameToVictims") or {}).items():
                meta[node] = {
                    "Pods": [{"UID": p["metadata"]["uid"]} for p in victims.get("Pods") or []],
                    "NumPDBViolations": victims.get("NumPDBViolations", 0),
                }
        self.calls.append(("preempt", pod, tuple(sorted(meta))))
        kept = {n: v for n, v in meta.items() if n not in self.refuse_preemption_on}
        return web.json_response({"NodeNameToMetaVictims": kept})


def extender_config(
    url: str, *, verbs: Iterable[str] = ("filter", "prioritize"), **extra: Any
) -> JSON:
    """One `extenders` entry for the test extender at `url` (weight 1 unless given)."""
    entry: JSON = {"urlPrefix": url}
    for verb in verbs:
        entry[f"{verb}Verb"] = verb
    if "prioritize" in verbs:
        entry.setdefault("weight", 1)
    entry.update(extra)
    return entry
