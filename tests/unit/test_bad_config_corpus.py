"""The bad-config corpus (issue 12, part 6): malformed scheduler configs through `berth run`.

Every file in `tests/unit/bad_configs/` (hand-written) and every document generated below must make
`berth run --config FILE --kubeconfig /nonexistent` exit 2 naming the bad field, never with a
traceback and never getting as far as the credentials (the config is checked first).

Most cases call `scheduler.cli.main` in-process (the very code path of the command, minus the
~1 s interpreter start); `test_real_cli_*` run a handful of them as true subprocesses, to show the
in-process verdicts are the command's. Files the test writes itself: a huge config, a
deeply nested one and one with a 5000-digit integer (kept out of the repository).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler import cli, logs

CORPUS = Path(__file__).parent / "bad_configs"
HEADER = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
CREDENTIALS = "cannot load cluster credentials"  # what a config that passes runs into next


def part_2(*names: str, id: str) -> Any:
    """A plugin-args case (issue 12, part 2: plugin args decoded as strictly as the rest)."""
    return pytest.param(id, names, id=id)


# File stem -> substrings stderr must hold (the field path first). Upstream's words where berth
# uses them; the path is what matters: it tells the user which line to fix.
TABLE = [
    # The document as a whole
    pytest.param("empty", ("must be a YAML mapping (got null)",), id="empty"),
    pytest.param("comments-only", ("must be a YAML mapping (got null)",), id="comments-only"),
    pytest.param("scalar-document", ("must be a YAML mapping",), id="scalar-document"),
    pytest.param("list-document", ("must be a YAML mapping (got a list)",), id="list-document"),
    pytest.param("wrong-api-version", ("apiVersion: must be",), id="wrong-api-version"),
    pytest.param("wrong-kind", ("kind: must be",), id="wrong-kind"),
    pytest.param(
        "missing-type-meta", ("apiVersion: required", "kind: required"), id="missing-type-meta"
    ),
    pytest.param("unknown-top-field", ("parallelizm: unknown field",), id="unknown-top-field"),
    pytest.param("case-mismatch-field", ("Parallelism: unknown field",), id="case-mismatch-field"),
    # Top-level values: wrong types, out of range
    pytest.param(
        "parallelism-string", ("parallelism: must be an integer",), id="parallelism-string"
    ),
    pytest.param("parallelism-float", ("parallelism: must be an integer",), id="parallelism-float"),
    pytest.param(
        "parallelism-yaml11-bool",
        ("parallelism: must be an integer",),
        id="parallelism-yaml11-bool",
    ),
    pytest.param(
        "parallelism-zero", ("parallelism: must be greater than 0",), id="parallelism-zero"
    ),
    pytest.param(
        "parallelism-int32-overflow", ("parallelism: must be in",), id="parallelism-int32-overflow"
    ),
    pytest.param(
        "percentage-above-100",
        ("percentageOfNodesToScore: must be in the range",),
        id="percentage-above-100",
    ),
    pytest.param(
        "backoff-negative",
        ("podInitialBackoffSeconds: must be greater than 0",),
        id="backoff-negative",
    ),
    pytest.param(
        "max-backoff-below-initial",
        ("podMaxBackoffSeconds: must be >=",),
        id="max-backoff-below-initial",
    ),
    # leaderElection
    pytest.param(
        "leader-election-scalar",
        ("leaderElection: must be a mapping",),
        id="leader-election-scalar",
    ),
    pytest.param(
        "lease-duration-no-unit",
        ("leaderElection.leaseDuration: must be a duration",),
        id="lease-duration-no-unit",
    ),
    pytest.param(
        "lease-duration-integer",
        ("leaderElection.leaseDuration: must be a string",),
        id="lease-duration-integer",
    ),
    pytest.param(
        "lease-duration-timestamp",
        ("leaderElection.leaseDuration: must be a string",),
        id="lease-duration-timestamp",
    ),
    pytest.param(
        "lease-duration-overflow",
        ("leaderElection.leaseDuration: must be a duration",),
        id="lease-duration-overflow",
    ),
    pytest.param(
        "renew-not-below-lease",
        ("leaderElection.leaseDuration: must be greater than",),
        id="renew-not-below-lease",
    ),
    pytest.param(
        "resource-lock-bad-enum",
        ("leaderElection.resourceLock: must be",),
        id="resource-lock-bad-enum",
    ),
    # clientConnection
    pytest.param(
        "client-burst-negative",
        ("clientConnection.burst: must be non-negative",),
        id="client-burst-negative",
    ),
    pytest.param(
        "client-content-type-bad-enum",
        ("clientConnection.contentType: must be",),
        id="client-content-type-bad-enum",
    ),
    pytest.param(
        "client-qps-string", ("clientConnection.qps: must be a number",), id="client-qps-string"
    ),
    # Profiles and plugin sets
    pytest.param("profiles-mapping", ("profiles: must be a list",), id="profiles-mapping"),
    pytest.param("profile-scalar", ("profiles[0]: must be a mapping",), id="profile-scalar"),
    pytest.param(
        "profile-unknown-field",
        ("profiles[0].scheduler_name: unknown field",),
        id="profile-unknown-field",
    ),
    pytest.param(
        "duplicate-scheduler-names",
        ("profiles[1].schedulerName: duplicate",),
        id="duplicate-scheduler-names",
    ),
    pytest.param(
        "missing-scheduler-name",
        ("profiles[1].schedulerName: required",),
        id="missing-scheduler-name",
    ),
    pytest.param(
        "unknown-extension-point",
        ("profiles[0].plugins.scores: unknown field",),
        id="unknown-extension-point",
    ),
    pytest.param(
        "unknown-plugin",
        ("profiles[0].plugins.score.enabled[0].name: unknown plugin",),
        id="unknown-plugin",
    ),
    pytest.param(
        "plugin-weight-string",
        ("profiles[0].plugins.score.enabled[0].weight: must be an integer",),
        id="plugin-weight-string",
    ),
    pytest.param(
        "wildcard-enabled",
        ('profiles[0].plugins.multiPoint.enabled[0].name: "*"',),
        id="wildcard-enabled",
    ),
    pytest.param(
        "removed-plugin",
        ('profiles[0].plugins.filter.enabled[0].name: plugin "EBSLimits" was',),
        id="removed-plugin",
    ),
    pytest.param(
        "plugin-config-unknown-plugin",
        ("profiles[0].pluginConfig[0].name: unknown plugin",),
        id="plugin-config-unknown-plugin",
    ),
    pytest.param(
        "plugin-config-duplicate",
        ("profiles[0].pluginConfig[1].name: duplicate",),
        id="plugin-config-duplicate",
    ),
    pytest.param(
        "plugin-args-list",
        ("profiles[0].pluginConfig[0].args: must be a mapping",),
        id="plugin-args-list",
    ),
    pytest.param(
        "plugin-args-wrong-kind",
        ("profiles[0].pluginConfig[0].args.kind: must be",),
        id="plugin-args-wrong-kind",
    ),
    pytest.param(
        "extenders",
        (
            "extenders[0].weight: Invalid value: 0: must have a positive weight",
            "extenders[1].managedResources[0].name: Invalid value: \"cpu\"",
            'extenders: Invalid value: "found 2 extenders implementing bind"',
        ),
        id="extenders",
    ),
    pytest.param(
        "node-selector-bad-key",
        ("nodeSelector[-zone]: invalid label key",),
        id="node-selector-bad-key",
    ),
    pytest.param(
        "node-selector-int-value",
        ("nodeSelector[zone]: label value must be a string",),
        id="node-selector-int-value",
    ),
    # YAML itself
    pytest.param("duplicate-key", ("duplicate key 'parallelism'",), id="duplicate-key"),
    pytest.param(
        "duplicate-key-nested", ("duplicate key 'leaderElect'",), id="duplicate-key-nested"
    ),
    pytest.param("yaml-unclosed-bracket", ("invalid YAML",), id="yaml-unclosed-bracket"),
    pytest.param("yaml-tab-indent", ("invalid YAML",), id="yaml-tab-indent"),
    pytest.param(
        "yaml-two-documents", ("invalid YAML", "single document"), id="yaml-two-documents"
    ),
    pytest.param(
        "yaml-python-tag",
        ("invalid YAML", "could not determine a constructor"),
        id="yaml-python-tag",
    ),
    pytest.param("yaml-binary-tag", ("parallelism: must be an integer",), id="yaml-binary-tag"),
    pytest.param(
        "yaml-unhashable-key", ("invalid YAML", "unhashable key"), id="yaml-unhashable-key"
    ),
    pytest.param("yaml-merge-scalar", ("invalid YAML",), id="yaml-merge-scalar"),
    pytest.param("yaml-nul-byte", ("invalid YAML",), id="yaml-nul-byte"),
    # 9**8 references under unknown fields. Upstream refuses the document ("excessive
    # aliasing"); berth today names the unknown fields a..i. Exit 2 quickly either way.
    pytest.param("yaml-unused-alias-bomb", (), id="yaml-unused-alias-bomb"),
    # Encodings
    pytest.param("binary-junk", ("cannot read the scheduler configuration",), id="binary-junk"),
    pytest.param("latin1", ("cannot read the scheduler configuration",), id="latin1"),
    # Upstream's YAML reader decodes UTF-16 with a BOM; berth reads UTF-8 only (exit 2 either
    # way here: the document says parallelism 0).
    pytest.param("utf16", ("cannot read the scheduler configuration",), id="utf16"),
    pytest.param(
        "utf8-bom-with-error", ("parallelism: must be greater than 0",), id="utf8-bom-with-error"
    ),
    # Plugin args, with upstream's field names (validation_pluginargs.go)
    part_2(
        "profiles[0].pluginConfig", "scoringStrategy.resources[0].weight", id="args-fit-weight-101"
    ),
    part_2("profiles[0].pluginConfig", "scoringStrategy.type", id="args-fit-strategy-bad-enum"),
    part_2("profiles[0].pluginConfig", "ignoredResourceGroup", id="args-fit-unknown-field"),
    part_2("profiles[0].pluginConfig", "ignoredResources", id="args-fit-ignored-resources-int"),
    part_2("profiles[0].pluginConfig", "defaultingType", id="args-spread-defaulting-bad-enum"),
    part_2(
        "profiles[0].pluginConfig", "defaultConstraints[0].maxSkew", id="args-spread-max-skew-zero"
    ),
    part_2(
        "profiles[0].pluginConfig",
        "defaultConstraints[0].whenUnsatisfiable",
        id="args-spread-when-bad-enum",
    ),
    part_2("profiles[0].pluginConfig", "hardPodAffinityWeight", id="args-interpod-weight-101"),
    part_2("profiles[0].pluginConfig", "hardPodAffinityWeight", id="args-interpod-weight-string"),
    part_2(
        "profiles[0].pluginConfig", "matchExpressions[0].operator", id="args-affinity-bad-operator"
    ),
    part_2(
        "profiles[0].pluginConfig", "matchExpressions[0].values", id="args-affinity-gt-not-integer"
    ),
    part_2(
        "profiles[0].pluginConfig",
        "minCandidateNodesPercentage",
        id="args-preemption-percentage-101",
    ),
    part_2(
        "profiles[0].pluginConfig",
        "minCandidateNodesAbsolute",
        id="args-preemption-absolute-negative",
    ),
    part_2(
        "profiles[0].pluginConfig", "bindTimeoutSeconds", id="args-volume-binding-timeout-negative"
    ),
    part_2("profiles[0].pluginConfig", "resources[0].weight", id="args-balanced-weight-not-one"),
]
# Run only as a memory-capped subprocess (test_alias_bomb_in_plugin_args).
SUBPROCESS_ONLY = {"args-alias-bomb"}


@pytest.fixture
def berth_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[[Path], tuple[int, str]]:
    """`berth run --config PATH --kubeconfig /nonexistent` in-process: (exit code, stderr)."""
    # cli's logging setup would replace the root handlers, pytest's capture among them.
    monkeypatch.setattr(logs, "setup", lambda level="info": None)

    def run(path: Path) -> tuple[int, str]:
        try:
            code = cli.main(["run", "--config", str(path), "--kubeconfig", "/nonexistent"])
        except Exception as exc:  # what the real command would print as a Traceback
            pytest.fail(f"berth run raised (a Traceback, exit 1): {exc!r}"[:2000], pytrace=False)
        return code, capsys.readouterr().err

    return run


def assert_rejected(code: int, err: str, names: tuple[str, ...]) -> None:
    """Exit 2, every expected substring in stderr, no traceback, credentials never reached."""
    assert "Traceback" not in err, err[-3000:]
    assert CREDENTIALS not in err, f"the config was accepted:\n{err[-3000:]}"
    assert code == 2, err[-3000:]
    for name in names:
        assert name in err, f"{name!r} not in:\n{err[-3000:]}"


@pytest.mark.parametrize(("stem", "names"), TABLE)
def test_corpus_file_is_rejected_naming_its_field(
    berth_run: Callable[[Path], tuple[int, str]], stem: str, names: tuple[str, ...]
) -> None:
    """Each hand-written bad config exits 2 with its field path in stderr."""
    assert_rejected(*berth_run(CORPUS / f"{stem}.yaml"), names)


def test_every_corpus_file_has_an_expectation() -> None:
    """The table and the directory name the same files (a new file without an outcome fails)."""
    stems = {path.stem for path in CORPUS.glob("*.yaml")}
    assert stems == {param.values[0] for param in TABLE} | SUBPROCESS_ONLY


def test_python_tag_is_never_executed(
    berth_run: Callable[[Path], tuple[int, str]], tmp_path: Path
) -> None:
    """A !!python/object/apply tag is refused, not run (the loader is a safe one)."""
    marker = tmp_path / "pwned"
    config = tmp_path / "config.yaml"
    config.write_text(HEADER + f'parallelism: !!python/object/apply:os.system ["touch {marker}"]\n')
    assert_rejected(*berth_run(config), ("invalid YAML",))
    assert not marker.exists()


def test_directory_as_config(berth_run: Callable[[Path], tuple[int, str]], tmp_path: Path) -> None:
    """--config naming a directory is a config error, not an IsADirectoryError traceback."""
    assert_rejected(*berth_run(tmp_path), ("cannot read the scheduler configuration",))


def test_huge_config_is_rejected(
    berth_run: Callable[[Path], tuple[int, str]], tmp_path: Path
) -> None:
    """A 2.5 MB document (a 2 MB comment, 2,000 profiles, a bad parallelism at the end) is read
    whole and its error reported; generated here, not committed. (PyYAML's pure-Python loader
    reads about 1 MB/s, so a bigger file only makes this test slower.)"""
    config = tmp_path / "huge.yaml"
    comment = ("#" + "x" * 999 + "\n") * 2_000
    profiles = "".join(
        f"- schedulerName: profile-{i}\n  percentageOfNodesToScore: {i % 100}\n"
        for i in range(2_000)
    )
    config.write_text(HEADER + comment + "profiles:\n" + profiles + "parallelism: -1\n")
    assert config.stat().st_size > 2_000_000
    assert_rejected(*berth_run(config), ("parallelism: must be greater than 0",))


# ------------------------------------------------------------------------------------------------
# Generated: every field with every wrong type, an unknown field in every section
# ------------------------------------------------------------------------------------------------

# Dotted path -> the YAML type it takes ("duration" is a Go duration string).
FIELD_TYPES = {
    "parallelism": "int",
    "percentageOfNodesToScore": "int",
    "podInitialBackoffSeconds": "int",
    "podMaxBackoffSeconds": "int",
    "enableProfiling": "bool",
    "enableContentionProfiling": "bool",
    "delayCacheUntilActive": "bool",
    "leaderElection": "map",
    "leaderElection.leaderElect": "bool",
    "leaderElection.leaseDuration": "duration",
    "leaderElection.renewDeadline": "duration",
    "leaderElection.retryPeriod": "duration",
    "leaderElection.resourceLock": "str",
    "leaderElection.resourceName": "str",
    "leaderElection.resourceNamespace": "str",
    "clientConnection": "map",
    "clientConnection.kubeconfig": "str",
    "clientConnection.acceptContentTypes": "str",
    "clientConnection.contentType": "str",
    "clientConnection.qps": "number",
    "clientConnection.burst": "int",
    "profiles": "list",
    "nodeSelector": "map",
    "profiles[0]": "map",
    "profiles[0].schedulerName": "str",
    "profiles[0].percentageOfNodesToScore": "int",
    "profiles[0].plugins": "map",
    "profiles[0].plugins.score": "map",
    "profiles[0].plugins.score.enabled": "list",
    "profiles[0].plugins.score.enabled[0]": "map",
    "profiles[0].plugins.score.enabled[0].name": "str",
    "profiles[0].plugins.score.enabled[0].weight": "int",
    "profiles[0].pluginConfig": "list",
    "profiles[0].pluginConfig[0]": "map",
    "profiles[0].pluginConfig[0].name": "str",
    "profiles[0].pluginConfig[0].args": "map",
}
# A junk value of each YAML type, and the types it would be valid for.
JUNK: dict[str, tuple[Any, set[str]]] = {
    "string": ("seven", {"str"}),
    "float": (1.5, {"number"}),
    "bool": (True, {"bool"}),
    "list": ([1], {"list"}),
    "map": ({"k": 1}, {"map"}),
    "int": (7, {"int", "number"}),
}
# A valid document holding every section FIELD_TYPES names, with leader election off (so its
# durations are free) and one score plugin and one pluginConfig entry to break.
BASE: dict[str, Any] = yaml.safe_load(
    HEADER
    + """\
leaderElection: {leaderElect: false}
clientConnection: {qps: 10}
profiles:
- schedulerName: berth
  plugins:
    score:
      enabled: [{name: ImageLocality, weight: 1}]
  pluginConfig: [{name: NodeAffinity, args: {}}]
"""
)


def set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    """doc[path] = value for a dotted path with [i] list indexes."""
    steps: list[str | int] = []
    for part in path.split("."):
        name, _, rest = part.partition("[")
        steps.append(name)
        steps.extend(int(index) for index in rest.rstrip("]").split("][") if index)
    target: Any = doc
    for step in steps[:-1]:
        target = target[step]
    target[steps[-1]] = value


def wrong_types() -> Iterator[Any]:
    for path, kind in FIELD_TYPES.items():
        for junk_name, (value, valid_for) in JUNK.items():
            if kind not in valid_for:
                yield pytest.param(path, value, id=f"{path}={junk_name}")


def unknown_fields() -> Iterator[Any]:
    sections = ["", *(path for path, kind in FIELD_TYPES.items() if kind == "map")]
    for section in sections:
        if section.endswith(("args", "nodeSelector")):
            continue  # args belong to the plugin; nodeSelector keys are label keys
        yield pytest.param(section, id=section or "top")


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_generated_base_document_is_valid(
    berth_run: Callable[[Path], tuple[int, str]], tmp_path: Path
) -> None:
    """The document the generated cases break passes the config and fails on credentials."""
    code, err = berth_run(write(tmp_path, BASE))
    assert (code, CREDENTIALS in err) == (1, True), err


@pytest.mark.parametrize(("path", "value"), list(wrong_types()))
def test_generated_wrong_type_names_its_field(
    berth_run: Callable[[Path], tuple[int, str]], tmp_path: Path, path: str, value: Any
) -> None:
    """A value of the wrong YAML type anywhere exits 2 naming that field's path."""
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    set_path(doc, path, value)
    assert_rejected(*berth_run(write(tmp_path, doc)), (f"{path}: ",))


@pytest.mark.parametrize("section", list(unknown_fields()))
def test_generated_unknown_field_names_its_path(
    berth_run: Callable[[Path], tuple[int, str]], tmp_path: Path, section: str
) -> None:
    """A misspelt field in any section exits 2 naming it, as upstream's strict decoding."""
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    field = f"{section}.bogusField" if section else "bogusField"
    set_path(doc, field, 1)
    assert_rejected(*berth_run(write(tmp_path, doc)), (f'{field}: unknown field "bogusField"',))


# ------------------------------------------------------------------------------------------------
# Bugs this suite found in config loading (issue 12), fixed: kept as regression tests
# ------------------------------------------------------------------------------------------------


def test_deeply_nested_yaml(berth_run: Callable[[Path], tuple[int, str]], tmp_path: Path) -> None:
    """A value nested 5000 lists deep is a config error, as upstream's max-depth check."""
    config = tmp_path / "deep.yaml"
    config.write_text(HEADER + "parallelism: " + "[" * 5000 + "]" * 5000 + "\n")
    assert_rejected(*berth_run(config), ("invalid YAML",))


def test_huge_integer_literal(berth_run: Callable[[Path], tuple[int, str]], tmp_path: Path) -> None:
    """parallelism: <5000 digits> is out of range, named as such."""
    config = tmp_path / "bigint.yaml"
    config.write_text(HEADER + "parallelism: " + "9" * 5000 + "\n")
    assert_rejected(*berth_run(config), ("parallelism",))


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_non_finite_qps(
    berth_run: Callable[[Path], tuple[int, str]], tmp_path: Path, value: str
) -> None:
    """qps .nan/.inf is refused: JSON has no such number, so upstream's decoder fails."""
    config = tmp_path / "qps.yaml"
    config.write_text(HEADER + f"clientConnection:\n  qps: {value}\n")
    assert_rejected(*berth_run(config), ("clientConnection.qps",))


# ------------------------------------------------------------------------------------------------
# The real command, as a subprocess
# ------------------------------------------------------------------------------------------------


def berth_subprocess(
    path: Path, timeout: float = 60, memory_bytes: int | None = None
) -> subprocess.Popen[str]:
    def limit() -> None:
        if memory_bytes is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scheduler.cli",
            "run",
            "--config",
            str(path),
            "--kubeconfig",
            "/nonexistent",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        preexec_fn=limit if memory_bytes else None,
        env={**os.environ, "PYTHONPATH": str(Path(cli.__file__).parents[1])},
    )


REAL = [
    "empty",
    "binary-junk",
    "yaml-python-tag",
    "unknown-plugin",
    "utf8-bom-with-error",
    "duplicate-key",
]


def test_real_cli_matches_the_in_process_verdicts() -> None:
    """A few corpus files through `python -m scheduler.cli run` (in parallel): exit 2, the
    field path, no traceback; a valid config gets past the config to the credentials."""
    expected = {param.values[0]: param.values[1] for param in TABLE}
    running = {stem: berth_subprocess(CORPUS / f"{stem}.yaml") for stem in REAL}
    for stem, process in running.items():
        _, err = process.communicate(timeout=60)
        assert_rejected(process.returncode, err, expected[stem])


def test_real_cli_reaches_credentials_with_a_valid_config(tmp_path: Path) -> None:
    """The control: a valid config passes and `berth run` stops at the missing kubeconfig."""
    config = tmp_path / "ok.yaml"
    config.write_text(HEADER + "profiles:\n- schedulerName: berth\n")
    _, err = (process := berth_subprocess(config)).communicate(timeout=60)
    assert (process.returncode, CREDENTIALS in err, "Traceback" in err) == (1, True, False), err


def test_alias_bomb_in_plugin_args() -> None:
    """A billion-laughs document is refused at load, in bounded time and memory (1 GiB cap)."""
    process = berth_subprocess(CORPUS / "args-alias-bomb.yaml", memory_bytes=1 << 30)
    try:
        _, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail("berth run still busy after 20 s")
    assert_rejected(process.returncode, err, ("excessive aliasing",))
