"""The conformance suite's gang checker: which pod groups are partially bound (0 < bound
members < quorum), from raw API JSON of Kubernetes' scheduling.k8s.io/v1beta1 PodGroups and of
scheduler-plugins' scheduling.x-k8s.io/v1alpha1 PodGroup CRD.

The code lives in scheduler/bench/gangcheck.py, because `berth bench` (which ships in the
package; tests/ does not) reports the same figure with the same function. Like checker.py, it
imports nothing of berth's engine (an import-linter contract says so), so a bug in berth's gang
scheduling would have to be written twice to go unnoticed. Its docstring says what counts as a
member, as bound, and as the quorum.
"""

from __future__ import annotations

from scheduler.bench.gangcheck import (
    COSCHEDULING,
    COSCHEDULING_LABEL,
    UPSTREAM,
    GroupCount,
    GroupKey,
    count,
    groups_of,
    is_bound,
    partially_bound,
    quorum_of,
)

__all__ = [
    "COSCHEDULING",
    "COSCHEDULING_LABEL",
    "UPSTREAM",
    "GroupCount",
    "GroupKey",
    "count",
    "groups_of",
    "is_bound",
    "partially_bound",
    "quorum_of",
]
