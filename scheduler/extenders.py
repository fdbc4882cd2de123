"""`extenders` of a KubeSchedulerConfiguration: decode, default and validate.

An extender is an HTTP service the scheduler consults after its own plugins (upstream's
HTTPExtender; the types are k8s.io/kube-scheduler config/v1 Extender, ExtenderManagedResource
and ExtenderTLSConfig). This module holds the typed, validated configuration; the HTTP client is
scheduler/extender_client.py and the cycle's use of it is in scheduler/cycle.py.

Field names, defaults and messages are upstream's:

- `httpTimeout` 0 or unset means 5 s (upstream's DefaultExtenderTimeout, applied in
  NewHTTPExtender); a negative duration means no timeout, as Go's http.Client reads it.
- `tlsConfig.certData`/`keyData`/`caData` are `[]byte` in Go, so base64 in YAML/JSON; the data
  take precedence over the file variants (client-go's TLS config).
- Validation (upstream's validateExtenders): a prioritizer's `weight` must be positive; at most
  one extender may have a `bindVerb`; each managed resource name must be a qualified name and an
  extended resource name, and no name may be managed twice (across all extenders).
- berth also requires `urlPrefix` to be an http(s) URL (upstream accepts anything and fails
  each call at run time); docs/compat.md lists it.

Managed resources with `ignoredByScheduler: true` are added to NodeResourcesFit's
`ignoredResources` in every profile (upstream's buildExtenders does the same), see
`ignored_resources()`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from scheduler.decode import (
    NS_PER_S,
    Section,
    default,
    invalid,
    required,
    show,
)
from scheduler.labels import is_qualified_name

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MAX_EXTENDER_PRIORITY",
    "ExtenderConfig",
    "ManagedResource",
    "TLSConfig",
    "ignored_resources",
    "parse_extenders",
]

DEFAULT_TIMEOUT_S = 5.0  # upstream's DefaultExtenderTimeout
MAX_EXTENDER_PRIORITY = 10  # extenderv1.MaxExtenderPriority: extender scores are in [0, 10]

_FIELDS = frozenset(
    {
        "urlPrefix",
        "filterVerb",
        "preemptVerb",
        "prioritizeVerb",
        "weight",
        "bindVerb",
        "enableHTTPS",
        "tlsConfig",
        "httpTimeout",
        "nodeCacheCapable",
        "managedResources",
        "ignorable",
    }
)
_TLS_FIELDS = frozenset(
    {"insecure", "serverName", "certFile", "keyFile", "caFile", "certData", "keyData", "caData"}
)
_RESOURCE_FIELDS = frozenset({"name", "ignoredByScheduler"})
# v1.DefaultResourceRequestsPrefix: quota's "requests.<name>", which an extended name must fit.
_REQUESTS_PREFIX = "requests."


@dataclass(frozen=True)
class ManagedResource:
    name: str
    ignored_by_scheduler: bool = False


@dataclass(frozen=True)
class TLSConfig:
    """client-go's TLSClientConfig subset; `*_data` are PEM bytes, preferred over the files."""

    insecure: bool = False
    server_name: str = ""
    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""
    cert_data: bytes = b""
    key_data: bytes = b""
    ca_data: bytes = b""


@dataclass(frozen=True)
class ExtenderConfig:
    """One validated extender. An empty verb means the extender does not do that step.
    `timeout_s` None means no timeout. `name` is the urlPrefix, as upstream's Name()."""

    url_prefix: str
    filter_verb: str = ""
    preempt_verb: str = ""
    prioritize_verb: str = ""
    weight: int = 0
    bind_verb: str = ""
    enable_https: bool = False
    tls: TLSConfig | None = None
    timeout_s: float | None = DEFAULT_TIMEOUT_S
    node_cache_capable: bool = False
    managed_resources: tuple[ManagedResource, ...] = ()
    ignorable: bool = False

    @property
    def name(self) -> str:
        return self.url_prefix


def parse_extenders(top: Section) -> tuple[ExtenderConfig, ...]:
    """Decode, default and validate `extenders` of the document `top`; errors go to its list,
    each with its field path (`extenders[0].weight: ...`)."""
    decoded: list[tuple[int, ExtenderConfig, tuple[int, ...]]] = []
    for i, raw in enumerate(top.get_list("extenders")):
        before = len(top.errs)
        section = top.section_at(raw, f"{top.at('extenders')}[{i}]", _FIELDS)
        extender, positions = _extender(section)
        # An entry with a field that does not decode is not validated further: upstream's
        # strict decoding stops before validation, and its defaults would only add noise
        # (`weight: "five"` is not also "weight 0 must be positive").
        if len(top.errs) == before:
            decoded.append((i, extender, positions))
    _validate(top, decoded)
    return tuple(extender for _, extender, _ in decoded)


def ignored_resources(extenders: Sequence[ExtenderConfig]) -> tuple[str, ...]:
    """The managed resources NodeResourcesFit must not check (upstream's buildExtenders)."""
    return tuple(r.name for e in extenders for r in e.managed_resources if r.ignored_by_scheduler)


def _extender(section: Section) -> tuple[ExtenderConfig, tuple[int, ...]]:
    """One extender, and the index in `managedResources` of each resource it kept."""
    url = default(section.get_str("urlPrefix"), "")
    timeout_ns = default(section.get_duration_ns("httpTimeout"), 0)
    timeout: float | None = DEFAULT_TIMEOUT_S
    if timeout_ns < 0:
        timeout = None
    elif timeout_ns > 0:
        timeout = timeout_ns / NS_PER_S
    tls = None
    if section.get("tlsConfig") is not None:
        tls = _tls(section.section("tlsConfig", _TLS_FIELDS))
    resources = _managed_resources(section)
    config = ExtenderConfig(
        url_prefix=url,
        filter_verb=default(section.get_str("filterVerb"), ""),
        preempt_verb=default(section.get_str("preemptVerb"), ""),
        prioritize_verb=default(section.get_str("prioritizeVerb"), ""),
        weight=default(section.get_int("weight", (-(2**63), 2**63 - 1)), 0),
        bind_verb=default(section.get_str("bindVerb"), ""),
        enable_https=default(section.get_bool("enableHTTPS"), False),
        tls=tls,
        timeout_s=timeout,
        node_cache_capable=default(section.get_bool("nodeCacheCapable"), False),
        managed_resources=tuple(resource for _, resource in resources),
        ignorable=default(section.get_bool("ignorable"), False),
    )
    return config, tuple(j for j, _ in resources)


def _managed_resources(section: Section) -> list[tuple[int, ManagedResource]]:
    """The entries that decode; one that does not (not a mapping, a name that is not a
    string) is reported by the decoder and not validated, as upstream's strict decoding
    stops before validation."""
    out = []
    key = "managedResources"
    for j, raw in enumerate(section.get_list(key)):
        item = section.section_at(raw, f"{section.at(key)}[{j}]", _RESOURCE_FIELDS)
        name = item.get_str("name")
        ignored = default(item.get_bool("ignoredByScheduler"), False)
        if isinstance(raw, Mapping) and (name is not None or raw.get("name") is None):
            out.append((j, ManagedResource(name or "", ignored)))
    return out


def _tls(section: Section) -> TLSConfig:
    return TLSConfig(
        insecure=default(section.get_bool("insecure"), False),
        server_name=default(section.get_str("serverName"), ""),
        cert_file=default(section.get_str("certFile"), ""),
        key_file=default(section.get_str("keyFile"), ""),
        ca_file=default(section.get_str("caFile"), ""),
        cert_data=_bytes(section, "certData"),
        key_data=_bytes(section, "keyData"),
        ca_data=_bytes(section, "caData"),
    )


def _bytes(section: Section, key: str) -> bytes:
    """A Go `[]byte` field: base64 text in YAML/JSON (encoding/json's rule)."""
    text = section.get_str(key)
    if not text:
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        section.error(section.at(key), f"must be base64-encoded (got {show(text)[:40]})")
        return b""


def _validate(
    top: Section, extenders: Sequence[tuple[int, ExtenderConfig, tuple[int, ...]]]
) -> None:
    """Upstream's validateExtenders, message for message, plus berth's urlPrefix rule;
    `extenders` are (index in the list, decoded extender, kept managedResources positions)."""
    binders = 0
    managed: set[str] = set()
    for i, extender, positions in extenders:
        path = f"extenders[{i}]"
        if problem := _url_problem(extender.url_prefix):
            if extender.url_prefix:
                top.errs.append(invalid(f"{path}.urlPrefix", extender.url_prefix, problem))
            else:
                top.errs.append(required(f"{path}.urlPrefix", "the extender's URL"))
        if extender.prioritize_verb and extender.weight <= 0:
            top.errs.append(
                invalid(
                    f"{path}.weight", extender.weight, "must have a positive weight applied to it"
                )
            )
        if extender.bind_verb:
            binders += 1
        for j, resource in zip(positions, extender.managed_resources, strict=True):
            at = f"{path}.managedResources[{j}].name"
            top.errs += _extended_resource_name(at, resource.name)
            if resource.name in managed:
                top.errs.append(
                    invalid(at, resource.name, "duplicate extender managed resource name")
                )
            managed.add(resource.name)
    if binders > 1:
        top.errs.append(
            invalid(
                "extenders",
                f"found {binders} extenders implementing bind",
                "only one extender can implement bind",
            )
        )


def _extended_resource_name(path: str, name: str) -> list[str]:
    """Upstream's validateExtendedResourceName (v1helper.IsExtendedResourceName)."""
    problems = [invalid(path, name, msg) for msg in is_qualified_name(name)]
    if problems:
        return problems
    native = "/" not in name or "kubernetes.io/" in name
    if native or name.startswith(_REQUESTS_PREFIX) or is_qualified_name(_REQUESTS_PREFIX + name):
        return [invalid(path, name, "is an invalid extended resource name")]
    return []


def _url_problem(url: str) -> str:
    """Why `url` cannot be an extender's urlPrefix ("" when it can): berth calls it, so it
    must be an http(s) URL with a host and, if given, a port number."""
    if not url:
        return "required"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "must be an http:// or https:// URL"
    if not parts.hostname:
        return "must name a host (http://HOST[:PORT]/PATH)"
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return "must have a port number between 0 and 65535 after the host"
    return ""
