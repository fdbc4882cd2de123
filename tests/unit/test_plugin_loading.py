"""Out-of-tree plugins as installed packages (a dist-info on sys.path with `berth.plugins`
entry points): how berth tells their extension points, and the errors a broken one gives."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import plugins
from scheduler.app import build_profiles, plugin_points
from scheduler.config import API_VERSION, KIND, ConfigError, parse
from scheduler.handle import in_memory

GOOD_TYPE_CHECKING_ONLY = """
from __future__ import annotations
from typing import TYPE_CHECKING
from scheduler.framework import Status
if TYPE_CHECKING:
    from scheduler.framework import Handle

NAME = "LateTyped"

class LateTyped:
    name = NAME
    def permit(self, state, pod, node):
        return None, 0.0

def new(args, handle: Handle) -> LateTyped:
    return LateTyped()
"""

NO_ANNOTATION = """
NAME = "NoAnnotation"

class NoAnnotation:
    name = NAME
    def permit(self, state, pod, node):
        return None, 0.0

def new(args, handle):
    return NoAnnotation()
"""

CRASHES = """
from __future__ import annotations
NAME = "Crashes"

class Crashes:
    name = NAME
    def permit(self, state, pod, node):
        return None, 0.0

def new(args, handle) -> Crashes:
    raise RuntimeError("factory crashed")
"""

CLASHES = """
NAME = "NodeResourcesFit"
def new(args, handle):
    return None
"""


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """install(**modules): write the modules and a dist-info naming them as entry points."""

    def install(**modules: str) -> None:
        dist = tmp_path / "sample_plugins-0.1.dist-info"
        dist.mkdir(exist_ok=True)
        (dist / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: sample-plugins\nVersion: 0.1\n"
        )
        lines = ["[berth.plugins]"]
        for module, source in modules.items():
            (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
            lines.append(f"{module} = {module}")
        (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")

    monkeypatch.syspath_prepend(str(tmp_path))
    yield install


def config(*permit: str) -> object:
    profile = {
        "schedulerName": "s",
        "plugins": {"permit": {"enabled": [{"name": p} for p in permit]}},
    }
    return parse(
        {"apiVersion": API_VERSION, "kind": KIND, "profiles": [profile]}, plugins.registry().keys()
    )


def test_a_return_type_imported_for_type_checking_only_resolves(installed) -> None:  # type: ignore[no-untyped-def]
    """Only new()'s return annotation is resolved, so the Handle imported under
    TYPE_CHECKING does not matter."""
    installed(late_typed=GOOD_TYPE_CHECKING_ONLY)
    points, problems = plugin_points(plugins.registry())
    assert "LateTyped" not in problems
    assert points["LateTyped"] == {"permit"}
    profiles = build_profiles(config("LateTyped"), in_memory())  # type: ignore[arg-type]
    assert [p.name for p in profiles["s"].permit if p.name != "GangScheduling"] == ["LateTyped"]


def test_a_factory_without_return_annotation_is_named_when_enabled(installed) -> None:  # type: ignore[no-untyped-def]
    installed(no_annotation=NO_ANNOTATION)
    build_profiles(config(), in_memory())  # type: ignore[arg-type]  # not enabled: fine
    with pytest.raises(ConfigError) as err:
        build_profiles(config("NoAnnotation"), in_memory())  # type: ignore[arg-type]
    assert "NoAnnotation: new() has no return annotation naming the plugin class" in str(err.value)


def test_a_crashing_factory_is_a_config_error_named_once(installed) -> None:  # type: ignore[no-untyped-def]
    installed(crashes=CRASHES)
    with pytest.raises(ConfigError) as err:
        build_profiles(config("Crashes"), in_memory())  # type: ignore[arg-type]
    assert err.value.errors == [
        "profiles[0].pluginConfig[Crashes].args: RuntimeError: factory crashed"
    ]


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        pytest.param(
            {"missing_dep": "import not_a_real_module\nNAME = 'X'\ndef new(a, h): pass\n"},
            "entry point 'missing_dep' (missing_dep, from sample-plugins): cannot import: "
            "ModuleNotFoundError: No module named 'not_a_real_module'",
            id="import-error",
        ),
        pytest.param(
            {"clashes": CLASHES},
            "entry point 'clashes' (clashes, from sample-plugins): plugin 'NodeResourcesFit' "
            "is registered twice (also built-in)",
            id="name-taken",
        ),
        pytest.param(
            {"no_name": "def new(a, h): pass\n"},
            "entry point 'no_name' (no_name, from sample-plugins): a plugin module needs NAME "
            "and new(args, handle)",
            id="no-name",
        ),
    ],
)
def test_a_broken_installed_plugin_is_named(
    installed, modules: dict[str, str], message: str
) -> None:  # type: ignore[no-untyped-def]
    installed(**modules)
    with pytest.raises(plugins.PluginLoadError) as err:
        plugins.registry()
    assert str(err.value) == message


def test_bad_args_of_a_plugin_at_several_extension_points_are_reported_once() -> None:
    """PodTopologySpread is at PreFilter, Filter, PreScore and Score: its bad args give one
    error per problem, not one per extension point."""
    doc = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "profiles": [
            {
                "schedulerName": "s",
                "pluginConfig": [
                    {
                        "name": "PodTopologySpread",
                        "args": {
                            "defaultingType": "List",
                            "defaultConstraints": [
                                {
                                    "maxSkew": 1,
                                    "topologyKey": "bad key!",
                                    "whenUnsatisfiable": "DoNotSchedule",
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    with pytest.raises(ConfigError) as err:
        build_profiles(parse(doc, plugins.registry().keys()), in_memory())
    assert len(err.value.errors) == len(set(err.value.errors)) == 1
    assert 'topologyKey: Invalid value: "bad key!"' in err.value.errors[0]
