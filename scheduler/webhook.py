"""`berth webhook`: a mutating admission webhook that routes new pods to berth shards.

A *shard* is one berth deployment with its own schedulerName, its own Lease and (optionally) its
own node pool (`nodeSelector` in its KubeSchedulerConfiguration). Pods pick a shard by naming its
scheduler; this webhook does the naming for pods that do not, from an ordered list of rules:

```yaml
rules:
- name: gpu                          # first matching rule wins
  schedulerName: berth-train
  match:
    resources: [nvidia.com/gpu]      # the pod requests any of these (requests or limits > 0)
- name: ml-namespaces
  schedulerName: berth-train
  match:
    namespaceSelector: {matchLabels: {team: ml}}
- name: web
  schedulerName: berth-web
  match:
    namespaces: [shop, checkout]     # any of these namespaces
    podSelector:                     # and pod labels (a Kubernetes LabelSelector)
      matchExpressions: [{key: tier, operator: In, values: [web, api]}]
```

Inside one `match` every field must hold (AND); inside a list any entry may (OR); an empty or
missing `match` matches every pod. A pod that no rule matches is left unchanged (it keeps
`default-scheduler`). A pod that already names a scheduler other than `default-scheduler`, or
that is created with `spec.nodeName` (it needs no scheduler), is left alone too.

The module has two halves:

- **Pure** (no I/O, unit-tested): `parse_rules()` validates a rules document and reports every
  problem with its field path; `decide()` maps (rules, pod, namespace labels) to a `Decision`.
- **Serving**: a kopf operator with one `kopf.on.mutate` handler on pods (CREATE) behind a
  `kopf.WebhookServer` (TLS from files, or a self-signed CA + serving cert made at start-up),
  kopf's liveness endpoint for probes, and a small TTL cache of namespace labels read through
  berth's own API client.

Failing open is a design rule, not an accident: the webhook is registered with
`failurePolicy: Ignore` and a short `timeoutSeconds`, so an outage or a slow answer never blocks
pod creation, and the handler itself never raises (kopf turns a handler exception into a denied
admission, which `Ignore` would *not* cover): any error is logged and the pod goes unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import re
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from scheduler.labels import (
    LabelSelector,
    SelectorError,
    is_dns1123_subdomain,
    parse_label_selector,
)

log = logging.getLogger("berth.webhook")

JSON = dict[str, Any]

DEFAULT_SCHEDULER = "default-scheduler"
HANDLER_ID = "shard"  # the handler's id is its URL path: https://HOST:PORT/shard
DEFAULT_PORT = 9443
DEFAULT_HEALTH_PORT = 8080
NAMESPACE_TTL = 30.0  # seconds a namespace's labels are trusted; they rarely change
NAMESPACE_TIMEOUT = 2.0  # one namespace read; its result is cached even if it comes late
DECISION_BUDGET = 2.5  # answer (unchanged, at worst) before the registration's 3 s timeout

_MATCH_FIELDS = ("namespaces", "namespaceSelector", "podSelector", "resources")
_RULE_FIELDS = ("name", "schedulerName", "match")


# --------------------------------------------------------------------------------------------
# rules: values
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """Route pods that match every given criterion to `scheduler_name`.

    `None` means "criterion not given" (always holds); an empty `namespaces` or `resources`
    set is refused by the parser, so it never means "match nothing" by accident.
    """

    name: str
    scheduler_name: str
    namespaces: frozenset[str] | None = None
    namespace_selector: LabelSelector | None = None
    pod_selector: LabelSelector | None = None
    resources: frozenset[str] | None = None

    @property
    def needs_namespace_labels(self) -> bool:
        return self.namespace_selector is not None


@dataclass(frozen=True)
class Decision:
    """What the webhook does to one pod: set `scheduler_name`, or leave it (None), and why."""

    scheduler_name: str | None
    reason: str
    rule: str | None = None


class RulesError(ValueError):
    """A rules document is malformed; `errors` lists every problem as `path: message`."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = list(errors)


# --------------------------------------------------------------------------------------------
# rules: the pure decision
# --------------------------------------------------------------------------------------------


def requested_resources(pod: Mapping[str, Any]) -> frozenset[str]:
    """Names of the resources a pod asks for with a non-zero quantity, in requests or limits
    (an extended resource is usually given only as a limit), over containers, init
    containers and pod-level resources."""
    spec = pod.get("spec") or {}
    blocks = [c.get("resources") or {} for c in spec.get("containers") or []]
    blocks += [c.get("resources") or {} for c in spec.get("initContainers") or []]
    blocks.append(spec.get("resources") or {})
    names = set()
    for block in blocks:
        for kind in ("requests", "limits"):
            for name, quantity in (block.get(kind) or {}).items():
                if not _is_zero(quantity):
                    names.add(name)
    return frozenset(names)


def decide(
    rules: Sequence[Rule],
    pod: Mapping[str, Any],
    namespace_labels: Mapping[str, str] | None,
) -> Decision:
    """The schedulerName for a pod being created, from the first rule that matches it.

    `namespace_labels` is None when they could not be read: a rule that needs them (and whose
    other criteria hold) then stops the search with no change, rather than letting a later,
    broader rule take a pod that may belong to it.
    """
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    current = spec.get("schedulerName") or DEFAULT_SCHEDULER
    if current != DEFAULT_SCHEDULER:
        return Decision(None, f"names scheduler {current}")
    if spec.get("nodeName"):
        return Decision(None, "already bound to a node")
    namespace = meta.get("namespace") or ""
    labels = meta.get("labels") or {}
    requested: frozenset[str] | None = None
    for rule in rules:
        if rule.namespaces is not None and namespace not in rule.namespaces:
            continue
        if rule.pod_selector is not None and not rule.pod_selector.matches(labels):
            continue
        if rule.resources is not None:
            requested = requested_resources(pod) if requested is None else requested
            if not rule.resources & requested:
                continue
        if rule.namespace_selector is not None:
            if namespace_labels is None:
                return Decision(None, "namespace labels unavailable", rule.name)
            if not rule.namespace_selector.matches(namespace_labels):
                continue
        return Decision(rule.scheduler_name, "matched", rule.name)
    return Decision(None, "no rule matched")


def _is_zero(quantity: Any) -> bool:
    """True for a zero Kubernetes quantity ("0", "0m", "0Gi", 0); anything else counts."""
    text = str(quantity).strip()
    number = re.match(r"[+-]?(\d+\.?\d*|\.\d+)", text)
    return number is not None and float(number.group(0)) == 0.0


# --------------------------------------------------------------------------------------------
# rules: parsing and validation
# --------------------------------------------------------------------------------------------


def load_rules(path: Path) -> list[Rule]:
    """Read and validate a rules file; raises RulesError (unreadable YAML included)."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise RulesError([f"{path}: {err}"]) from err
    return parse_rules(doc)


def parse_rules(doc: Any) -> list[Rule]:
    """Validate a rules document (`{rules: [...]}`) and return its rules in order."""
    errors: list[str] = []
    if not isinstance(doc, Mapping):
        raise RulesError([f"<root>: must be a mapping with a `rules` list (got {_show(doc)})"])
    errors += [f"{k}: unknown field" for k in doc if k != "rules"]
    raw_rules = doc.get("rules")
    if not isinstance(raw_rules, list):
        raise RulesError([*errors, f"rules: must be a list (got {_show(raw_rules)})"])
    rules, names = [], set()
    for i, raw in enumerate(raw_rules):
        path = f"rules[{i}]"
        rule = _parse_rule(raw, path, errors)
        if rule is None:
            continue
        if rule.name in names:
            errors.append(f"{path}.name: duplicate rule name {rule.name!r}")
        names.add(rule.name)
        rules.append(rule)
    if errors:
        raise RulesError(errors)
    return rules


def _parse_rule(raw: Any, path: str, errors: list[str]) -> Rule | None:
    if not isinstance(raw, Mapping):
        errors.append(f"{path}: must be a mapping (got {_show(raw)})")
        return None
    errors += [f"{path}.{k}: unknown field" for k in raw if k not in _RULE_FIELDS]
    name, scheduler = raw.get("name"), raw.get("schedulerName")
    if not isinstance(name, str) or not name:
        errors.append(f"{path}.name: required, a non-empty string (got {_show(name)})")
    if not isinstance(scheduler, str) or not _is_subdomain(scheduler):
        errors.append(
            f"{path}.schedulerName: required, a lowercase RFC 1123 subdomain "
            f"(got {_show(scheduler)})"
        )
    match = raw.get("match")
    if match is None:
        match = {}
    if not isinstance(match, Mapping):
        errors.append(f"{path}.match: must be a mapping (got {_show(match)})")
        return None
    errors += [f"{path}.match.{k}: unknown field" for k in match if k not in _MATCH_FIELDS]
    rule = Rule(
        name=name if isinstance(name, str) else "",
        scheduler_name=scheduler if isinstance(scheduler, str) else "",
        namespaces=_string_set(match, "namespaces", f"{path}.match", errors),
        namespace_selector=_selector(match, "namespaceSelector", f"{path}.match", errors),
        pod_selector=_selector(match, "podSelector", f"{path}.match", errors),
        resources=_string_set(match, "resources", f"{path}.match", errors),
    )
    return rule


def _string_set(
    parent: Mapping[str, Any], key: str, path: str, errors: list[str]
) -> frozenset[str] | None:
    raw = parent.get(key)
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw or not all(isinstance(v, str) and v for v in raw):
        errors.append(f"{path}.{key}: must be a non-empty list of strings (got {_show(raw)})")
        return None
    return frozenset(raw)


def _selector(
    parent: Mapping[str, Any], key: str, path: str, errors: list[str]
) -> LabelSelector | None:
    """A LabelSelector field (scheduler.labels, strict); None when not given or invalid."""
    raw = parent.get(key)
    if raw is None:
        return None
    try:
        return parse_label_selector(raw, f"{path}.{key}", strict=True)
    except SelectorError as err:
        errors += err.errors
        return None


def _is_subdomain(value: str) -> bool:
    return not is_dns1123_subdomain(value)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------------------------
# serving: namespace labels, TLS, the kopf operator
# --------------------------------------------------------------------------------------------


Fetch = Callable[[str], Awaitable[Mapping[str, str]]]


class NamespaceLabels:
    """Namespace name → labels, cached for `ttl` seconds, with one fetch in flight per name
    (a burst of pods in one namespace asks the API server once). `get` returns None when the
    labels cannot be read; the caller decides what that means."""

    def __init__(
        self, fetch: Fetch, ttl: float = NAMESPACE_TTL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, Mapping[str, str]]] = {}
        self._inflight: dict[str, asyncio.Task[Mapping[str, str]]] = {}

    async def get(self, name: str) -> Mapping[str, str] | None:
        hit = self._cache.get(name)
        if hit is not None and hit[0] > self._clock():
            return hit[1]
        task = self._inflight.get(name)
        if task is None:
            task = asyncio.ensure_future(self._fetch(name))
            self._inflight[name] = task
            task.add_done_callback(lambda t: self._finished(name, t))
        try:
            labels = await asyncio.shield(task)
        except Exception as err:  # fail open: the caller leaves the pod alone
            log.warning(
                "namespace labels unavailable", extra={"namespace": name, "error": str(err)}
            )
            return None
        self._cache[name] = (self._clock() + self._ttl, labels)
        return labels

    def _finished(self, name: str, task: asyncio.Task[Mapping[str, str]]) -> None:
        self._inflight.pop(name, None)
        if not task.cancelled():
            task.exception()  # retrieved even if every waiter timed out and left


async def admit(
    rules: Sequence[Rule], pod: Mapping[str, Any], namespaces: NamespaceLabels
) -> Decision:
    """The decision for one admitted pod; reads namespace labels only if a rule needs them."""
    namespace = (pod.get("metadata") or {}).get("namespace") or ""
    labels: Mapping[str, str] | None = {}
    if any(r.needs_namespace_labels for r in rules):
        labels = await namespaces.get(namespace)
    return decide(rules, pod, labels)


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    ca: Path  # what the apiserver trusts: the MutatingWebhookConfiguration's caBundle


def self_signed(directory: Path, hosts: Iterable[str]) -> TlsFiles:
    """Write a throwaway CA and a serving certificate for `hosts` (DNS names or IPs)."""
    from scheduler import tls

    directory.mkdir(parents=True, exist_ok=True)
    ca = tls.certificate_authority("berth-webhook-ca")
    serving = tls.serving_certificate(ca, "berth-webhook", hosts)
    files = TlsFiles(directory / "tls.crt", directory / "tls.key", directory / "ca.crt")
    files.ca.write_bytes(ca.cert_pem())
    files.cert.write_bytes(serving.cert_pem())
    tls.write_private(files.key, serving.key_pem())
    return files


@dataclass(frozen=True)
class WebhookOptions:
    """`berth webhook`'s flags, after parsing."""

    rules: list[Rule]
    port: int = DEFAULT_PORT
    bind_address: str = "0.0.0.0"
    tls: TlsFiles | None = None  # None: make a self-signed pair for `hosts`
    hosts: tuple[str, ...] = ("localhost", "127.0.0.1")
    cert_dir: Path | None = None  # where a self-signed pair goes; default a temporary dir
    kubeconfig: str | None = None
    health_port: int | None = DEFAULT_HEALTH_PORT  # kopf's liveness endpoint (/healthz)


def make_registry(
    rules: Sequence[Rule], namespaces: NamespaceLabels, kubeconfig: str | None
) -> Any:
    """A kopf registry with the pod mutation handler and a login from berth's credentials."""
    import kopf

    from scheduler.kube.kopfbase import register_login

    registry = kopf.OperatorRegistry()
    register_login(registry, kubeconfig)

    @kopf.on.mutate(
        "v1", "pods", id=HANDLER_ID, operations=["CREATE"], ignore_failures=True, registry=registry
    )
    async def assign(body: Any, patch: Any, dryrun: bool, **_: Any) -> None:
        pod: Mapping[str, Any] = dict(body)
        meta = pod.get("metadata") or {}
        name = meta.get("name") or f"{meta.get('generateName', '')}*"
        key = f"{meta.get('namespace', '')}/{name}"
        try:
            async with asyncio.timeout(DECISION_BUDGET):
                decision = await admit(rules, pod, namespaces)
        except TimeoutError:
            log.warning("admission too slow, pod left unchanged", extra={"pod": key})
            return
        except Exception:  # never deny a pod: that is what failing open means
            log.exception("admission failed, pod left unchanged", extra={"pod": key})
            return
        if decision.scheduler_name is not None:
            patch.spec["schedulerName"] = decision.scheduler_name
        log.info(
            "admission",
            extra={
                "pod": key,
                "rule": decision.rule,
                "schedulerName": decision.scheduler_name,
                "reason": decision.reason,
                "dryRun": dryrun,
            },
        )

    return registry


async def serve(options: WebhookOptions) -> None:
    """Run the webhook until cancelled (SIGINT/SIGTERM are handled by kopf)."""
    import kopf

    from scheduler.kube.client import ApiError, Client
    from scheduler.kube.kopfbase import base_settings, liveness_endpoint

    tls = options.tls
    if tls is None:
        directory = options.cert_dir or Path(tempfile.mkdtemp(prefix="berth-webhook-"))
        tls = self_signed(directory, options.hosts)
        log.info("self-signed certificate", extra={"ca": str(tls.ca), "hosts": options.hosts})

    # One retry at most: an answer that comes after the API server gave up is wasted.
    async with Client.from_kubeconfig(options.kubeconfig, qps=0, retries=1) as client:

        async def fetch(name: str) -> Mapping[str, str]:
            try:
                ns = await client.request(
                    "GET", f"/api/v1/namespaces/{name}", timeout=NAMESPACE_TIMEOUT
                )
            except ApiError as err:
                if err.status == 404:  # possible only in a race with its deletion
                    return {}
                raise
            labels: Mapping[str, str] = (ns.get("metadata") or {}).get("labels") or {}
            return labels

        registry = make_registry(options.rules, NamespaceLabels(fetch), options.kubeconfig)
        # Pods are built in, so no scanning; decisions go to the log, not to Events.
        settings = base_settings(log)
        settings.admission.server = kopf.WebhookServer(
            addr=options.bind_address,
            port=options.port,
            certfile=str(tls.cert),
            pkeyfile=str(tls.key),
            cafile=str(tls.ca),
        )
        settings.admission.managed = None  # the chart or the user owns the configuration
        log.info(
            "serving",
            extra={
                "port": options.port,
                "rules": [r.name for r in options.rules],
                "path": f"/{HANDLER_ID}",
            },
        )
        await kopf.operator(
            registry=registry,
            settings=settings,
            clusterwide=True,
            standalone=True,
            liveness_endpoint=liveness_endpoint(options.bind_address, options.health_port),
        )
