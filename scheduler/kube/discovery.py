"""What the API server is: its version and the group-versions it serves.

berth supports servers v1.35 to v1.37. Some features need an API that only newer servers serve,
or that a cluster admin may have turned off (DRA's resource.k8s.io/v1, the Workload/PodGroup
API scheduling.k8s.io/v1beta1 behind GenericWorkload). At start berth reads `/version`, `/api`
and `/apis` once (the legacy discovery documents, served by every version) and each feature
that needs a missing group-version is turned off with one log line, instead of an informer that
retries a 404 forever. Mirrors what kube-scheduler gets from its informer factory: an informer
for an unserved resource is simply never started there either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from scheduler.kube.client import Client

_MINOR = re.compile(r"(\d+)")


@dataclass(frozen=True)
class ServerInfo:
    """`git_version` as the server reports it ("v1.37.2"); `group_versions` such as "v1",
    "apps/v1", "resource.k8s.io/v1" (the core group is plain "v1")."""

    git_version: str
    major: int
    minor: int
    group_versions: frozenset[str]

    def serves(self, group_version: str) -> bool:
        return group_version in self.group_versions

    @classmethod
    def parse(
        cls, version: dict[str, Any], api: dict[str, Any], apis: dict[str, Any]
    ) -> ServerInfo:
        """From the JSON of /version, /api (APIVersions) and /apis (APIGroupList).

        Minor versions such as "37+" (some distributions) count as 37."""

        def number(text: object) -> int:
            match = _MINOR.match(str(text or ""))
            return int(match.group(1)) if match else 0

        served = set(api.get("versions") or ())
        for group in apis.get("groups") or ():
            for v in group.get("versions") or ():
                if gv := v.get("groupVersion"):
                    served.add(gv)
        return cls(
            git_version=str(version.get("gitVersion") or ""),
            major=number(version.get("major")),
            minor=number(version.get("minor")),
            group_versions=frozenset(served),
        )


async def discover(client: Client) -> ServerInfo:
    """Read the server's version and served group-versions (three GETs).

    Raises ApiError (or a connection error) if the server cannot be read; callers treat that
    like any failure to reach the API at start."""
    version = await client.get("/version")
    api = await client.get("/api")
    apis = await client.get("/apis")
    return ServerInfo.parse(version, api, apis)
