"""The HTTP client of one scheduler extender (upstream's pkg/scheduler/extender.go HTTPExtender).

Each verb is a POST of a JSON body to `urlPrefix` (trailing slashes trimmed) + "/" + verb, with
the extender's timeout; any status but 200 is an error. Bodies are upstream's extender/v1 types,
which have no JSON tags, so their keys are the Go field names (`Pod`, `Nodes`, `NodeNames`,
`FailedNodes`, ...); answers are read case-insensitively, as Go's encoding/json does.

- Pods and Nodes go as the raw JSON berth keeps (PodInfo.raw, the node informer's store), so
  an extender sees what kube-scheduler would send it.
- `nodeCacheCapable` extenders get `NodeNames` (and answer `NodeNames`), others a `Nodes`
  NodeList (and answer `Nodes`, of which only the names are used).
- TLS as upstream's makeTransport: `enableHTTPS` without a CA skips verification; `insecure`
  skips it too; `serverName` is the name checked and sent for SNI; `*Data` is preferred to
  `*File`.

One aiohttp session per extender, made on first use (it needs the running loop); `close()`
ends it. Errors are raised as ExtenderError with upstream's wording where it has one.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from scheduler.decode import ConfigError
from scheduler.extenders import ExtenderConfig, TLSConfig
from scheduler.model import PodInfo

JSON = dict[str, Any]

__all__ = ["ExtenderError", "FilterResult", "HTTPExtender", "build_extenders", "extender_scores"]


class ExtenderError(Exception):
    """A call failed: transport error, timeout, non-200 answer, or the extender's `Error`."""


@dataclass(frozen=True)
class FilterResult:
    """The nodes that passed, and the reasons of those that failed (node name -> message)."""

    nodes: tuple[str, ...]
    failed: Mapping[str, str]
    unresolvable: Mapping[str, str]


class HTTPExtender:
    """One configured extender; `node_json(name)` gives a node's raw object (None if gone)."""

    def __init__(self, config: ExtenderConfig, node_json: Callable[[str], JSON | None]) -> None:
        self.config = config
        self.name = config.name
        self.ignorable = config.ignorable
        self._node_json = node_json
        self._managed = frozenset(r.name for r in config.managed_resources)
        self._session: aiohttp.ClientSession | None = None
        try:  # upstream's NewHTTPExtender fails the same way, at start
            self._ssl = _ssl_context(config.tls, config.enable_https)
        except (ssl.SSLError, OSError, ValueError) as err:
            raise ExtenderError(f"extender {self.name!r}: bad TLS configuration: {err}") from err

    @property
    def is_filter(self) -> bool:
        return bool(self.config.filter_verb)

    @property
    def is_prioritizer(self) -> bool:
        return bool(self.config.prioritize_verb)

    @property
    def is_binder(self) -> bool:
        return bool(self.config.bind_verb)

    @property
    def supports_preemption(self) -> bool:
        return bool(self.config.preempt_verb)

    def is_interested(self, pod: PodInfo) -> bool:
        """Upstream's IsInterested: no managed resources means every pod; else the pod must
        request or limit one of them in a container or an init container."""
        if not self._managed:
            return True
        spec = pod.raw.get("spec") or {}
        for kind in ("containers", "initContainers"):
            for container in spec.get(kind) or ():
                resources = container.get("resources") or {}
                for part in ("requests", "limits"):
                    if not self._managed.isdisjoint(resources.get(part) or ()):
                        return True
        return False

    # --- verbs ---------------------------------------------------------------------------

    async def filter(self, pod: PodInfo, nodes: Sequence[str]) -> FilterResult:
        """The filter verb on `nodes` (all of them pass when there is no filter verb).
        A node name answered that was not sent is an error, as upstream's."""
        if not self.is_filter:
            return FilterResult(tuple(nodes), {}, {})
        result = await self._send(self.config.filter_verb, self._args(pod, nodes))
        with _decoding(self.name, "filter"):
            return self._filter_result(result, nodes)

    def _filter_result(self, result: Any, nodes: Sequence[str]) -> FilterResult:
        if error := _get(result, "Error"):
            raise ExtenderError(str(error))
        sent = set(nodes)
        passed: list[str] = []
        if self.config.node_cache_capable and _get(result, "NodeNames") is not None:
            for name in _get(result, "NodeNames") or ():
                if not isinstance(name, str):
                    raise TypeError(f"NodeNames holds {type(name).__name__}, not a string")
                if name not in sent:
                    raise ExtenderError(
                        f"extender {self.name!r} claims a filtered node {name!r} which is "
                        "not found in the input node list"
                    )
                passed.append(name)
        elif (node_list := _get(result, "Nodes")) is not None:
            for item in _get(node_list, "items") or ():
                passed.append(str(((item or {}).get("metadata") or {}).get("name", "")))
        return FilterResult(
            tuple(passed),
            _failed_map(_get(result, "FailedNodes")),
            _failed_map(_get(result, "FailedAndUnresolvableNodes")),
        )

    async def prioritize(self, pod: PodInfo, nodes: Sequence[str]) -> list[tuple[str, int]]:
        """The prioritize verb: (node, score in [0, 10]) pairs as answered."""
        if not self.is_prioritizer:
            return [(name, 0) for name in nodes]
        result = await self._send(self.config.prioritize_verb, self._args(pod, nodes))
        if not isinstance(result, list):
            raise ExtenderError(f"prioritize of {self.name!r} answered {type(result).__name__}")
        with _decoding(self.name, "prioritize"):
            return [(str(_get(_entry(h), "Host")), _integer(_get(h, "Score"))) for h in result]

    async def bind(self, pod: PodInfo, node: str) -> None:
        """The bind verb (ExtenderBindingArgs); the extender writes the Binding itself."""
        result = await self._send(
            self.config.bind_verb,
            {"PodName": pod.name, "PodNamespace": pod.namespace, "PodUID": pod.uid, "Node": node},
        )
        if error := _get(result, "Error"):
            raise ExtenderError(str(error))

    async def process_preemption(
        self, pod: PodInfo, victims: Mapping[str, tuple[Sequence[PodInfo], int]]
    ) -> dict[str, tuple[list[str], int]]:
        """The preempt verb on candidates (node -> (victim pods, PDB violations)); answers
        node -> (victim UIDs, PDB violations), upstream's NodeNameToMetaVictims."""
        if self.config.node_cache_capable:
            args = {
                "Pod": pod.raw,
                "NodeNameToMetaVictims": {
                    node: {"Pods": [{"UID": p.uid} for p in pods], "NumPDBViolations": pdb}
                    for node, (pods, pdb) in victims.items()
                },
            }
        else:
            args = {
                "Pod": pod.raw,
                "NodeNameToVictims": {
                    node: {"Pods": [p.raw for p in pods], "NumPDBViolations": pdb}
                    for node, (pods, pdb) in victims.items()
                },
            }
        result = await self._send(self.config.preempt_verb, args)
        out: dict[str, tuple[list[str], int]] = {}
        with _decoding(self.name, "preempt"):
            for node, meta in (_get(result, "NodeNameToMetaVictims") or {}).items():
                listed = (_get(meta, "Pods") or ()) if meta else ()
                pods = [str(_get(p, "UID")) for p in listed if p]
                out[node] = (pods, _integer(_get(meta, "NumPDBViolations")) if meta else 0)
        return out

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- transport -----------------------------------------------------------------------

    def _args(self, pod: PodInfo, nodes: Sequence[str]) -> JSON:
        if self.config.node_cache_capable:
            return {"Pod": pod.raw, "Nodes": None, "NodeNames": list(nodes)}
        items = [obj for obj in map(self._node_json, nodes) if obj is not None]
        return {"Pod": pod.raw, "Nodes": {"metadata": {}, "items": items}, "NodeNames": None}

    async def _send(self, verb: str, args: Any) -> Any:
        url = self.config.url_prefix.rstrip("/") + "/" + verb
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout)
        tls = self.config.tls
        extra: dict[str, Any] = {}
        if tls is not None and tls.server_name and url.startswith("https://"):
            extra["server_hostname"] = tls.server_name
        try:
            async with self._session.post(
                url,
                data=orjson.dumps(args),
                headers={"Content-Type": "application/json"},
                ssl=self._ssl if self._ssl is not None else True,
                **extra,
            ) as resp:
                if resp.status != 200:
                    raise ExtenderError(
                        f"failed {verb} with extender at URL {url}, code {resp.status}"
                    )
                return orjson.loads(await resp.read())
        except TimeoutError as err:
            raise ExtenderError(f"{verb} with extender at URL {url}: timed out") from err
        except (aiohttp.ClientError, orjson.JSONDecodeError, OSError) as err:
            raise ExtenderError(f"{verb} with extender at URL {url}: {err}") from err


def extender_scores(
    answers: Sequence[tuple[int, Sequence[tuple[str, int]]]],
) -> dict[str, int]:
    """Upstream's prioritizeNodes arithmetic: each extender's score * its weight * (MaxNodeScore
    / MaxExtenderPriority = 100 / 10), summed per node. `answers` holds (weight, answer) per
    extender that answered; nodes absent from an answer get nothing from it."""
    totals: dict[str, int] = {}
    for weight, answer in answers:
        for host, score in answer:
            totals[host] = totals.get(host, 0) + score * weight * (100 // 10)
    return totals


@contextlib.contextmanager
def _decoding(name: str, verb: str) -> Iterator[None]:
    """An answer of the wrong shape (a number where a list belongs, a string score) is that
    extender's error, as Go's json.Unmarshal fails upstream: an ignorable extender is then
    skipped, and no cycle fails on a TypeError."""
    try:
        yield
    except (TypeError, ValueError, AttributeError) as err:
        raise ExtenderError(f"extender {name!r}: cannot decode its {verb} answer: {err}") from err


def _entry(value: Any) -> Mapping[str, Any]:
    """One HostPriority: a JSON object."""
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a HostPriority object, got {value!r}")
    return value


def _integer(value: Any) -> int:
    """A JSON integer field (null: 0); anything else is a decoding error."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _failed_map(value: Any) -> dict[str, str]:
    """FailedNodes / FailedAndUnresolvableNodes: a JSON object of node name to message."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"expected an object of node name to message, got {value!r}")
    return {str(node): str(why) for node, why in value.items()}


def _get(obj: Any, key: str) -> Any:
    """A field of a decoded Go struct: exact key first, then case-insensitively (Go's rule)."""
    if not isinstance(obj, Mapping):
        return None
    if key in obj:
        return obj[key]
    lower = key.lower()
    for name, value in obj.items():
        if isinstance(name, str) and name.lower() == lower:
            return value
    return None


def _ssl_context(tls: TLSConfig | None, enable_https: bool) -> ssl.SSLContext | None:
    """client-go's TLSConfigFor as upstream's makeTransport sets it up; None = defaults."""
    has_ca = tls is not None and bool(tls.ca_file or tls.ca_data)
    insecure = (tls is not None and tls.insecure) or (enable_https and not has_ca)
    has_cert = tls is not None and bool(tls.cert_data or tls.cert_file)
    if tls is None and not insecure:
        return None
    ctx = ssl.create_default_context()
    if tls is not None and has_ca:
        if tls.ca_data:
            ctx.load_verify_locations(cadata=tls.ca_data.decode())
        else:
            ctx.load_verify_locations(cafile=tls.ca_file)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if tls is not None and has_cert:
        _load_client_cert(ctx, tls)
    return ctx


def _load_client_cert(ctx: ssl.SSLContext, tls: TLSConfig) -> None:
    """ssl loads a client certificate only from files: PEM data go through a private temporary
    directory that is removed at once."""
    if not tls.cert_data and not tls.key_data:
        ctx.load_cert_chain(tls.cert_file, tls.key_file or None)
        return
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        with open(cert, "wb") as out:
            out.write(tls.cert_data or open(tls.cert_file, "rb").read())  # noqa: SIM115
        with open(key, "wb") as out:
            out.write(tls.key_data or open(tls.key_file, "rb").read())  # noqa: SIM115
        ctx.load_cert_chain(cert, key)


def build_extenders(
    configs: Sequence[ExtenderConfig], node_json: Callable[[str], JSON | None]
) -> tuple[HTTPExtender, ...]:
    """One client per configured extender, in order; a TLS setting that cannot be loaded
    (a missing file, bad PEM) raises ConfigError naming the extender's tlsConfig."""
    extenders, errors = [], []
    for i, config in enumerate(configs):
        try:
            extenders.append(HTTPExtender(config, node_json))
        except ExtenderError as err:
            errors.append(f"extenders[{i}].tlsConfig: {err}")
    if errors:
        raise ConfigError(errors)
    return tuple(extenders)
