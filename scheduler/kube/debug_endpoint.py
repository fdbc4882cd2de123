"""Where the leading berth serves its debug views: an annotation on the leader-election Lease.

`berth explain` must ask the replica that schedules (a standby has never tried any pod), and the
one object that names it is the Lease. The elector writes, on every write that names itself as
holder (create, acquire, renew), one berth-owned annotation on the Lease:

    metadata.annotations["berth.dev/debug-endpoint"] = '{"holderIdentity": "<hostname>_<hex>",
        "url": "https://10.0.0.7:10259", "certSHA256": "<hex SHA-256 of its serving certificate>"}'

The value names the holder it belongs to, so that a reader can tell a stale annotation (a
kube-scheduler or an older berth took the Lease over and kept the metadata, as client-go's
LeaseLock does) from the current holder's: only an annotation whose holderIdentity is the
Lease's spec.holderIdentity counts. Releasing the Lease drops the annotation. The Lease spec is
otherwise exactly upstream's (client-go's LeaderElectionRecord); upstream's old Endpoints and
ConfigMap locks kept their whole record as JSON in an annotation the same way
(control-plane.alpha.kubernetes.io/leader).

`certSHA256` (absent when berth serves plain HTTP, or does not know its certificate) lets a
client that read the Lease through the API server (TLS verified with the kubeconfig's CA) trust
the leader's self-signed serving certificate without any CA of its own: it pins the certificate.
Whoever may write the Lease may point `berth explain` elsewhere and pin their own certificate:
the RBAC that guards the Lease (deploy/rbac.yaml: only berth's service account, only that Lease)
guards this too.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ANNOTATION = "berth.dev/debug-endpoint"


@dataclass(frozen=True)
class DebugEndpoint:
    """The leader's identity and the base URL of its /debug/... views (scheme, host, port)."""

    holder: str
    url: str
    cert_sha256: str = ""
    """Lower-case hex SHA-256 of the serving certificate (DER); empty: not pinned."""

    def annotation(self) -> str:
        doc = {"holderIdentity": self.holder, "url": self.url}
        if self.cert_sha256:
            doc["certSHA256"] = self.cert_sha256
        return json.dumps(doc, sort_keys=True)

    @classmethod
    def parse(cls, value: str) -> DebugEndpoint | None:
        """The endpoint in an annotation value; None when it is not one (hand-edited, other)."""
        try:
            doc = json.loads(value)
        except ValueError:
            return None
        if not isinstance(doc, dict):
            return None
        holder, url, pin = doc.get("holderIdentity"), doc.get("url"), doc.get("certSHA256", "")
        if not isinstance(holder, str) or not isinstance(url, str) or not url:
            return None
        return cls(holder, url, pin.lower() if isinstance(pin, str) else "")


def base_url(scheme: str, host: str, port: int) -> str:
    """`scheme://host:port`, with an IPv6 address in brackets."""
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a host name
    return f"{scheme}://{host}:{port}"


def annotate(metadata: Mapping[str, Any], endpoint: DebugEndpoint | None) -> dict[str, Any]:
    """`metadata` with the annotation set to `endpoint`, or removed when None; every other
    key and annotation kept."""
    annotations = dict(metadata.get("annotations") or {})
    if endpoint is None:
        annotations.pop(ANNOTATION, None)
    else:
        annotations[ANNOTATION] = endpoint.annotation()
    out = {k: v for k, v in metadata.items() if k != "annotations"}
    if annotations:
        out["annotations"] = annotations
    return out


def of_lease(lease: Mapping[str, Any]) -> tuple[str, DebugEndpoint | None]:
    """The Lease's holder ("" when free) and its endpoint, when the annotation belongs to it."""
    holder = str((lease.get("spec") or {}).get("holderIdentity") or "")
    value = ((lease.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
    endpoint = DebugEndpoint.parse(value) if isinstance(value, str) else None
    if not holder or endpoint is None or endpoint.holder != holder:
        return holder, None
    return holder, endpoint
