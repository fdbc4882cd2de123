"""What berth's kopf-based commands (webhook, controller) share: the login, the settings they
start from, and the liveness endpoint.

kopf has its own API client; it is told to authenticate as berth's own `Client` does (a
kubeconfig, `$KUBECONFIG`, or the in-cluster service account: `Credentials.load`), so every
berth command reads credentials one way.
"""

from __future__ import annotations

import logging
from typing import Any

from scheduler.kube.client import Credentials


def register_login(registry: Any, kubeconfig: str | None) -> None:
    """Add a `kopf.on.login` handler to `registry` that logs in with berth's credentials."""
    import kopf

    @kopf.on.login(registry=registry)
    async def login(**_: Any) -> kopf.ConnectionInfo:
        # Re-read on every call: kopf logs in again on a 401, and an in-cluster token rotates.
        creds = Credentials.load(kubeconfig)
        token = (await creds.credential_source().get()).token  # an exec plugin's, too
        return kopf.ConnectionInfo(
            server=creds.server,
            ca_path=creds.ca_file,
            insecure=creds.insecure,
            token=token,
            scheme="Bearer" if token else None,
            certificate_path=creds.cert_file,
            private_key_path=creds.key_file,
        )


def base_settings(log: logging.Logger) -> Any:
    """kopf settings for a berth command: no peering (standalone), no CRD or namespace
    scanning (so no RBAC for either), no kopf-made Events, and kopf's own log quieted to
    warnings unless `log` asks for debug."""
    import kopf

    settings = kopf.OperatorSettings()
    settings.scanning.disabled = True
    settings.posting.enabled = False
    settings.peering.standalone = True
    logging.getLogger("kopf").setLevel(max(logging.WARNING, log.getEffectiveLevel()))
    return settings


def liveness_endpoint(address: str, port: int | None) -> str | None:
    """kopf's liveness URL (`/healthz`) on `address:port`; None (no endpoint) without a port."""
    return f"http://{address}:{port}/healthz" if port else None
