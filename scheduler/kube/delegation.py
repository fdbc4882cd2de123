"""Delegated authentication and authorization: the API server decides who a caller of berth's
HTTPS port is and what it may read, as it decides for kube-scheduler.

Mirrors k8s.io/apiserver's delegating authenticator and authorizer (pkg/server/options
authentication.go / authorization.go, plugin/pkg/authenticator/token/webhook,
plugin/pkg/authorizer/webhook, pkg/authentication/token/cache):

- `TokenReviews.authenticate(token)`: a TokenReview (authentication.k8s.io/v1) for a bearer
  token; the answer, authenticated or not, is cached for the TTL (10 s by default) under the
  token's SHA-256, never the token itself. Transport and API errors are raised, not cached.
- `AccessReviews.authorize(user, path, verb)`: a SubjectAccessReview (authorization.k8s.io/v1)
  with nonResourceAttributes; allowed answers are cached for the authorized TTL, denied ones for
  the unauthorized TTL (10 s each by default). Errors are raised, not cached.
- `client_ca_from_cluster(client)`: the `client-ca-file` of the kube-system/
  extension-apiserver-authentication ConfigMap, which client certificates are verified against
  when `--client-ca-file` is not given.

Reviews need RBAC: `system:auth-delegator` (create tokenreviews and subjectaccessreviews) and,
for the ConfigMap, `extension-apiserver-authentication-reader` in kube-system (deploy/).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from scheduler.kube.client import Client

TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
AUTHENTICATION_CONFIGMAP = (
    "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication"
)

AUTHENTICATED = "system:authenticated"
CACHE_LIMIT = 4096
"""Entries a review cache holds before it drops the expired ones (upstream's caches are LRUs
of about this size): a scrape every few seconds per Prometheus replica needs a handful."""


K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class UserInfo:
    """Who a request is from: user name, uid, groups, and extra attributes (key → values)."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())

    @classmethod
    def from_review(cls, user: Mapping[str, Any]) -> UserInfo:
        """From a TokenReview's status.user, with `system:authenticated` added to its groups as
        apiserver's AuthenticatedGroupAdder adds it."""
        groups = tuple(user.get("groups") or ())
        if AUTHENTICATED not in groups:
            groups += (AUTHENTICATED,)
        extra = tuple(sorted((k, tuple(v or ())) for k, v in (user.get("extra") or {}).items()))
        return cls(str(user.get("username") or ""), str(user.get("uid") or ""), groups, extra)


ANONYMOUS = UserInfo("system:anonymous", groups=("system:unauthenticated",))
"""The user of a request without credentials (apiserver's anonymous authenticator)."""


@dataclass(frozen=True)
class Decision:
    """A SubjectAccessReview's answer: `allowed`, and the authorizer's `reason` (may be "")."""

    allowed: bool
    reason: str = ""


class _TtlCache(Generic[K, V]):
    """Answers kept for a TTL each, by an injected monotonic clock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: K, value: V, ttl: float) -> None:
        if ttl <= 0:
            return
        now = self._clock()
        if len(self._entries) >= CACHE_LIMIT:
            self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
            if len(self._entries) >= CACHE_LIMIT:
                self._entries.clear()
        self._entries[key] = (now + ttl, value)


class TokenReviews:
    """Bearer tokens → users, through TokenReviews, cached `ttl` seconds (0: not cached)."""

    def __init__(
        self, client: Client, *, ttl: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._ttl = ttl
        # One-tuples, so that a cached "not authenticated" (None) is told from a miss.
        self._cache: _TtlCache[bytes, tuple[UserInfo | None]] = _TtlCache(clock)
        self.reviews = 0
        """TokenReviews sent (the cache's misses), for tests."""

    async def authenticate(self, token: str) -> UserInfo | None:
        """The token's user, or None when the API server says it is not authenticated.
        Raises ApiError or a transport error when the review itself fails."""
        key = hashlib.sha256(token.encode()).digest()
        cached = self._cache.get(key)
        if cached is not None:
            return cached[0]
        self.reviews += 1
        review = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        }
        answer = await self._client.post(TOKEN_REVIEWS, review)
        status = (answer or {}).get("status") or {}
        user = (
            UserInfo.from_review(status.get("user") or {}) if status.get("authenticated") else None
        )
        self._cache.put(key, (user,), self._ttl)
        return user


class AccessReviews:
    """(user, path, verb) → Decision, through SubjectAccessReviews, cached by outcome."""

    def __init__(
        self,
        client: Client,
        *,
        authorized_ttl: float = 10.0,
        unauthorized_ttl: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._authorized_ttl = authorized_ttl
        self._unauthorized_ttl = unauthorized_ttl
        self._cache: _TtlCache[tuple[UserInfo, str, str], Decision] = _TtlCache(clock)
        self.reviews = 0
        """SubjectAccessReviews sent (the cache's misses), for tests."""

    async def authorize(self, user: UserInfo, path: str, verb: str) -> Decision:
        """May `user` `verb` the non-resource URL `path`? Raises ApiError or a transport error
        when the review fails, or the authorizer's evaluation error when it could not decide."""
        key = (user, path, verb)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        self.reviews += 1
        spec: dict[str, Any] = {
            "user": user.name,
            "groups": list(user.groups),
            "nonResourceAttributes": {"path": path, "verb": verb},
        }
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = {k: list(v) for k, v in user.extra}
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": spec,
        }
        answer = await self._client.post(ACCESS_REVIEWS, review)
        status = (answer or {}).get("status") or {}
        decision = Decision(bool(status.get("allowed")), str(status.get("reason") or ""))
        if not decision.allowed and status.get("evaluationError") and not status.get("denied"):
            # No opinion because the authorizer failed: not an answer to cache.
            raise ReviewError(str(status["evaluationError"]))
        ttl = self._authorized_ttl if decision.allowed else self._unauthorized_ttl
        self._cache.put(key, decision, ttl)
        return decision


class ReviewError(Exception):
    """The API server could not evaluate a review (its evaluationError)."""


async def client_ca_from_cluster(client: Client) -> bytes | None:
    """The PEM CA bundle in the extension-apiserver-authentication ConfigMap's `client-ca-file`,
    or None when the ConfigMap has none. Raises ApiError (403 without the reader Role, 404 on a
    cluster that has no such ConfigMap) or a transport error."""
    configmap = await client.get(AUTHENTICATION_CONFIGMAP)
    bundle = ((configmap or {}).get("data") or {}).get("client-ca-file")
    return bundle.encode() if bundle else None
