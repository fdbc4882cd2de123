"""A complete configuration, mutated at random (hypothesis): it loads, or it is refused with a
ConfigError whose every line starts with a field path; nothing else ever escapes. Plus the
command line: `berth run --config` with bad plugin args exits 2 naming the field."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import plugins
from scheduler.config import API_VERSION, KIND, ConfigError, parse

KNOWN = frozenset(plugins.registry())

# A field path as errors print it: names joined by dots, list indexes and map keys in brackets.
# Segments as decode names them: an unknown key that is a plain name (decode._PLAIN_KEY,
# underscores and dashes allowed) is part of the path.
PATH = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*(\[[^\]]*\]|\.[A-Za-z][A-Za-z0-9_-]*)*(\s\([^)]*\))?: ")

SPREAD = {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}
TERM = {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}
COMPLETE: dict[str, Any] = {
    "apiVersion": API_VERSION,
    "kind": KIND,
    "parallelism": 8,
    "percentageOfNodesToScore": 50,
    "podInitialBackoffSeconds": 1,
    "podMaxBackoffSeconds": 10,
    "enableProfiling": True,
    "enableContentionProfiling": False,
    "delayCacheUntilActive": False,
    "nodeSelector": {"berth.io/shard": "a"},
    "clientConnection": {"kubeconfig": "", "qps": 50, "burst": 100, "contentType": ""},
    "leaderElection": {
        "leaderElect": True,
        "leaseDuration": "15s",
        "renewDeadline": "10s",
        "retryPeriod": "2s",
        "resourceLock": "leases",
        "resourceName": "berth",
        "resourceNamespace": "kube-system",
    },
    "profiles": [
        {
            "schedulerName": "default-scheduler",
            "percentageOfNodesToScore": 40,
            "plugins": {
                "multiPoint": {"enabled": [{"name": "ImageLocality", "weight": 2}]},
                "score": {"disabled": [{"name": "NodeResourcesBalancedAllocation"}]},
            },
            "pluginConfig": [
                {
                    "name": "DefaultPreemption",
                    "args": {"minCandidateNodesPercentage": 20, "minCandidateNodesAbsolute": 50},
                },
                {
                    "name": "InterPodAffinity",
                    "args": {
                        "hardPodAffinityWeight": 5,
                        "ignorePreferredTermsOfExistingPods": True,
                    },
                },
                {
                    "name": "NodeAffinity",
                    "args": {
                        "addedAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [TERM]
                            },
                            "preferredDuringSchedulingIgnoredDuringExecution": [
                                {"weight": 3, "preference": TERM}
                            ],
                        }
                    },
                },
                {
                    "name": "NodeResourcesBalancedAllocation",
                    "args": {"resources": [{"name": "cpu", "weight": 1}]},
                },
                {
                    "name": "NodeResourcesFit",
                    "args": {
                        "apiVersion": API_VERSION,
                        "kind": "NodeResourcesFitArgs",
                        "ignoredResources": ["example.com/foo"],
                        "ignoredResourceGroups": ["example.com"],
                        "scoringStrategy": {
                            "type": "RequestedToCapacityRatio",
                            "resources": [{"name": "cpu", "weight": 3}],
                            "requestedToCapacityRatio": {
                                "shape": [
                                    {"utilization": 0, "score": 0},
                                    {"utilization": 100, "score": 10},
                                ]
                            },
                        },
                    },
                },
                {
                    "name": "PodTopologySpread",
                    "args": {
                        "defaultingType": "List",
                        "defaultConstraints": [
                            {**SPREAD, "minDomains": 2, "matchLabelKeys": ["app"]}
                        ],
                    },
                },
                {
                    "name": "VolumeBinding",
                    "args": {
                        "bindTimeoutSeconds": 300,
                        "shape": [
                            {"utilization": 0, "score": 10},
                            {"utilization": 100, "score": 0},
                        ],
                    },
                },
                {
                    "name": "DynamicResources",
                    "args": {"filterTimeout": "5s", "bindingTimeout": "10m"},
                },
                {"name": "TaintToleration", "args": {}},
            ],
        }
    ],
}

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 100, 101, 2**31, 2**63, -(2**63) - 1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from(["", "abc", "cpu", "List", "System", "1s", "-1s", "In", "zone"]),
    st.lists(st.integers(), max_size=2),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(alphabet="ab /._:-", max_size=4), st.integers(), max_size=2),
    st.just({"x": {"y": [1, {"z": None}]}}),
)
KEYS = st.from_regex(r"[a-z][A-Za-z0-9]{0,8}", fullmatch=True)


def paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every location in the document (the root included)."""
    out = [at]
    if isinstance(node, dict):
        for key, value in node.items():
            out += paths(value, (*at, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += paths(value, (*at, i))
    return out


ALL_PATHS = paths(COMPLETE)


def mutate(doc: Any, path: tuple[Any, ...], how: str, junk: Any, key: str) -> Any:
    if not path:
        return junk if how == "replace" else doc
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    target = parent[last]
    if how == "replace":
        parent[last] = junk
    elif how == "delete":
        del parent[last]
    elif how == "add" and isinstance(target, dict):
        target[key] = junk
    elif how == "append" and isinstance(target, list):
        target.append(junk)
    elif how == "wrap":
        parent[last] = [target]
    return doc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(ALL_PATHS),
            st.sampled_from(["replace", "delete", "add", "append", "wrap"]),
            JUNK,
            KEYS,
        ),
        min_size=1,
        max_size=3,
    )
)
def test_mutated_config_loads_or_names_every_field(mutations: list[Any]) -> None:
    """Loads, or raises ConfigError with each line `field.path: message`; no other exception."""
    doc = copy.deepcopy(COMPLETE)
    for path, how, junk, key in mutations:
        try:
            doc = mutate(doc, path, how, junk, key)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    try:
        parse(doc, KNOWN)
    except ConfigError as err:
        assert err.errors
        for line in err.errors:
            assert PATH.match(line), line


def test_complete_config_loads() -> None:
    """The starting point of the property above is valid as it stands."""
    config = parse(copy.deepcopy(COMPLETE), KNOWN)
    assert set(config.profiles[0].plugin_config) >= {"VolumeBinding", "DynamicResources"}


@pytest.mark.parametrize(
    ("args_entry", "expected"),
    [
        pytest.param(
            {"name": "NodeResourcesFit", "args": {"scoringStrategy": {"type": "abc"}}},
            'profiles[0].pluginConfig[0].args.scoringStrategy.type: Unsupported value: "abc"',
            id="fit-strategy-type",
        ),
        pytest.param(
            {
                "name": "PodTopologySpread",
                "args": {
                    "defaultingType": "List",
                    "defaultConstraints": [{**SPREAD, "topologyKey": True}],
                },
            },
            "profiles[0].pluginConfig[0].args.defaultConstraints[0].topologyKey: must be a string",
            id="spread-topology-key-bool",
        ),
        pytest.param(
            {"name": "DefaultPreemption", "args": {"minCandidateNodesPercentage": "abc"}},
            "profiles[0].pluginConfig[0].args.minCandidateNodesPercentage: must be an integer",
            id="preemption-percentage-string",
        ),
    ],
)
def test_berth_run_exits_2_naming_the_field(
    tmp_path: Path, args_entry: dict[str, Any], expected: str
) -> None:
    """Plugin args are checked before credentials: no cluster needed, exit 2, no traceback."""
    doc = {"apiVersion": API_VERSION, "kind": KIND, "profiles": [{"pluginConfig": [args_entry]}]}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "missing-kubeconfig")}
    done = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr
    assert "Traceback" not in done.stderr
