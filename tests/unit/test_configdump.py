"""The defaulted KubeSchedulerConfiguration v1 document (configdump.to_v1): it reads back to a
configuration that schedules the same, and it is what kube-scheduler v1.37 writes for
--write-config-to, field for field, where berth's meaning is the same."""

from __future__ import annotations

import copy
import dataclasses
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import plugins
from scheduler.app import plugin_points
from scheduler.config import (
    API_VERSION,
    KIND,
    ConfigError,
    PluginRef,
    SchedulerConfig,
    expand_plugins,
    parse,
)
from scheduler.configdump import to_v1
from tests.unit.test_config_properties import ALL_PATHS, COMPLETE, JUNK, KEYS, mutate

KNOWN = frozenset(plugins.registry())
POINTS, _ = plugin_points(plugins.registry())
DEFAULTS = [PluginRef(name, weight) for name, weight in plugins.defaults()]

EXTENDERS: dict[str, Any] = {
    "apiVersion": API_VERSION,
    "kind": KIND,
    "extenders": [
        {
            "urlPrefix": "https://e/x",
            "filterVerb": "filter",
            "prioritizeVerb": "prio",
            "weight": 2,
            "httpTimeout": "3s",
            "managedResources": [{"name": "example.com/foo", "ignoredByScheduler": True}],
            "tlsConfig": {"insecure": True, "caData": "YWJj"},
        },
        {"urlPrefix": "http://other", "bindVerb": "bind", "httpTimeout": "-1s"},
    ],
}
MULTI: dict[str, Any] = {
    "apiVersion": API_VERSION,
    "kind": KIND,
    "percentageOfNodesToScore": 30,
    "profiles": [
        {
            "schedulerName": "a",
            "plugins": {
                "multiPoint": {
                    "enabled": [{"name": "NodeResourcesFit", "weight": 5}],
                    "disabled": [{"name": "ImageLocality"}],
                },
                "filter": {"disabled": [{"name": "*"}], "enabled": [{"name": "NodeName"}]},
            },
        },
        {
            "schedulerName": "b",
            "plugins": {"multiPoint": {"disabled": [{"name": "DefaultPreemption"}]}},
            "pluginConfig": [{"name": "TaintToleration", "args": {"anything": 1}}],
        },
    ],
}


def assert_reads_back(config: SchedulerConfig) -> None:
    """parse(to_v1(c)) is c: every field equal, except that the profiles' plugins and args
    come back completed (the default list merged in, default args filled in), so those are
    compared by what runs: the plugins at each extension point and each plugin's args."""
    doc = to_v1(config)
    again = parse(copy.deepcopy(doc), KNOWN)
    assert to_v1(again) == doc  # a fixed point
    flat = dataclasses.replace(config, profiles=(), percentage_of_nodes_to_score=None)
    assert dataclasses.replace(again, profiles=(), percentage_of_nodes_to_score=None) == flat
    assert (again.percentage_of_nodes_to_score or 0) == (config.percentage_of_nodes_to_score or 0)
    assert len(again.profiles) == len(config.profiles)
    for before, after in zip(config.profiles, again.profiles, strict=True):
        assert after.scheduler_name == before.scheduler_name
        assert after.percentage_of_nodes_to_score == before.percentage_of_nodes_to_score
        assert expand_plugins(after, DEFAULTS, POINTS) == expand_plugins(before, DEFAULTS, POINTS)
        for name, args in before.plugin_config.items():
            assert after.plugin_config.get(name, args) == args


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param({"apiVersion": API_VERSION, "kind": KIND}, id="defaults"),
        pytest.param(COMPLETE, id="every-field"),
        pytest.param(EXTENDERS, id="extenders"),
        pytest.param(MULTI, id="profiles-and-plugin-sets"),
    ],
)
def test_reads_back(doc: dict[str, Any]) -> None:
    assert_reads_back(parse(copy.deepcopy(doc), KNOWN))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
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
def test_every_loadable_mutation_reads_back(mutations: list[Any]) -> None:
    """The complete configuration mutated at random (test_config_properties): whatever loads
    reads back."""
    doc = copy.deepcopy(COMPLETE)
    for path, how, junk, key in mutations:
        try:
            doc = mutate(doc, path, how, junk, key)
        except (KeyError, IndexError, TypeError):
            continue
    try:
        config = parse(doc, KNOWN)
    except ConfigError:
        return
    assert_reads_back(config)


def test_default_document_is_upstreams(tmp_path: Path) -> None:
    """kube-scheduler v1.37 itself writes the reference (--write-config-to); berth's differs
    only where its meaning does (configdump's docstring lists why)."""
    from scheduler.harness.binaries import MissingBinary, binary

    try:
        kube_scheduler = binary("kube-scheduler")
    except MissingBinary as err:
        pytest.skip(str(err))
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: "
        "'https://127.0.0.1:9'}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\n"
        "current-context: c\nusers:\n- name: u\n  user: {token: t}\n"
    )
    out = tmp_path / "upstream.yaml"
    subprocess.run(
        [kube_scheduler, f"--write-config-to={out}", f"--kubeconfig={kubeconfig}",
         "--secure-port=0", "--feature-gates=GenericWorkload=true"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    upstream = yaml.safe_load(out.read_text())
    # kube-scheduler's own file loads in berth as it is (row 57: the v1.37 points, empty).
    default = parse({"apiVersion": API_VERSION, "kind": KIND}, KNOWN)
    assert to_v1(parse(upstream, KNOWN))["profiles"] == to_v1(default)["profiles"]
    ours = to_v1(parse({"apiVersion": API_VERSION, "kind": KIND}, KNOWN))
    upstream["clientConnection"] = ours["clientConnection"]  # berth's own defaults and JSON
    for point in ("placementGenerate", "placementScore", "podGroupPostFilter"):
        assert upstream["profiles"][0]["plugins"].pop(point) == {}
    assert ours == upstream
