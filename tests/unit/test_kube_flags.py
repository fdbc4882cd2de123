"""`berth run` with kube-scheduler's flags (cmd/kube-scheduler/app/options, v1.37.2): how each
reaches the configuration (with and without --config), -v, feature gates, --write-config-to,
and bad values exiting 2 with the flag's name."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

import plugins
from scheduler import cli, features, flags, logs
from scheduler.config import ConfigError, parse
from scheduler.configdump import to_v1
from scheduler.model import Taint, Toleration
from scheduler.queue import UNSCHEDULABLE
from tests.unit.test_queue import FakeClock, fail, new_queue
from tests.unit.test_queue import pod as make_pod

KNOWN = frozenset(plugins.registry())

FILE = """\
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  qps: 33
  burst: 44
leaderElection:
  leaderElect: true
  resourceName: from-file
profiles:
- schedulerName: berth
"""


def run_args(*argv: str) -> argparse.Namespace:
    return cli._parser().parse_args(["run", *argv])


def configured(tmp_path: Path, *argv: str, text: str | None = FILE) -> Any:
    """The configuration `berth run` would run with, given these flags (and FILE as --config
    when `text` is set)."""
    file_doc = None
    if text is not None:
        path = tmp_path / "config.yaml"
        path.write_text(text)
        argv = ("--config", str(path), *argv)
        file_doc = yaml.safe_load(text)
    return parse(flags.config_document(run_args(*argv), file_doc), KNOWN)


# --- precedence: options.go ApplyTo ---------------------------------------------------------


def test_without_config_the_deprecated_flags_apply(tmp_path: Path) -> None:
    """No --config: ApplyDeprecated copies --kubeconfig, --kube-api-*, --profiling and
    --contention-profiling onto the defaulted configuration."""
    config = configured(
        tmp_path,
        "--kubeconfig=/etc/kubernetes/scheduler.conf",
        "--kube-api-qps=7",
        "--kube-api-burst=9",
        "--kube-api-content-type=application/json",
        "--profiling=false",
        "--contention-profiling=false",
        text=None,
    )
    conn = config.client_connection
    assert (conn.kubeconfig, conn.qps, conn.burst) == ("/etc/kubernetes/scheduler.conf", 7, 9)
    assert not config.enable_profiling and not config.enable_contention_profiling
    assert config.profiles[0].scheduler_name == "default-scheduler"


def test_with_config_the_deprecated_flags_are_ignored(tmp_path: Path) -> None:
    """--config: the file's clientConnection stands; the flags are reported as ignored."""
    argv = ("--kube-api-qps=7", "--kube-api-burst=9", "--profiling=false")
    config = configured(tmp_path, *argv)
    assert (config.client_connection.qps, config.client_connection.burst) == (33, 44)
    assert config.enable_profiling
    args = run_args("--config", "x.yaml", *argv)
    assert flags.ignored_flags(args) == ["--kube-api-qps", "--kube-api-burst", "--profiling"]


@pytest.mark.parametrize("text", [FILE, None], ids=["with-config", "without-config"])
def test_leader_election_flags_apply_either_way(tmp_path: Path, text: str | None) -> None:
    """ApplyLeaderElectionTo runs with and without --config; only the flags given count."""
    config = configured(
        tmp_path,
        "--leader-elect=false",
        "--leader-elect-lease-duration=30s",
        "--leader-elect-resource-namespace=berth-system",
        text=text,
    )
    elect = config.leader_election
    assert not elect.leader_elect
    assert elect.lease_duration_s == 30
    assert elect.resource_namespace == "berth-system"
    assert elect.renew_deadline_s == 10  # not on the command line: default
    assert elect.resource_name == ("from-file" if text else "kube-scheduler")


def test_bare_bool_flag_means_true(tmp_path: Path) -> None:
    """pflag's bool flags: `--leader-elect` alone is true."""
    text = FILE.replace("leaderElect: true", "leaderElect: false")
    assert configured(tmp_path, "--leader-elect", text=text).leader_election.leader_elect


def test_kubeconfig_flag_fills_an_empty_clientconnection_only(tmp_path: Path) -> None:
    """berth's one exception to "deprecated flags are ignored with --config": --kubeconfig
    is used while the file names none (what berth always did), never over the file's."""
    assert configured(tmp_path, "--kubeconfig=/k").client_connection.kubeconfig == "/k"
    named = FILE.replace("  qps: 33", "  kubeconfig: /from-file\n  qps: 33")
    config = configured(tmp_path, "--kubeconfig=/k", text=named)
    assert config.client_connection.kubeconfig == "/from-file"


def test_a_leader_election_flag_is_validated_as_the_config_field(tmp_path: Path) -> None:
    """The flags land in the configuration before validation, as upstream's ApplyTo then
    ValidateKubeSchedulerConfiguration: the error names the field."""
    with pytest.raises(ConfigError, match=r"leaderElection\.leaseDuration"):
        configured(tmp_path, "--leader-elect-lease-duration=5s")


def test_a_flag_never_hides_a_section_of_the_wrong_type(tmp_path: Path) -> None:
    """A file whose leaderElection or clientConnection is not a mapping is still refused
    naming it, flags or not (a flag must not replace the section it lands in)."""
    for section in ("leaderElection: 7", "clientConnection: x"):
        text = FILE.split("clientConnection:")[0] + section + "\n"
        with pytest.raises(ConfigError, match=section.split(":")[0]):
            configured(tmp_path, "--leader-elect=false", "--kubeconfig=/k", text=text)


def test_unschedulable_flush_flag() -> None:
    """--pod-max-in-unschedulable-pods-duration (default 5m) is how long the queue keeps a
    pod unschedulable before retrying it anyway (berth run sets the queue's limit to it)."""
    assert flags.unschedulable_flush_seconds(run_args()) == 300
    args = run_args("--pod-max-in-unschedulable-pods-duration=90s")
    assert flags.unschedulable_flush_seconds(args) == 90
    clock = FakeClock()
    queue = new_queue(clock)
    queue.unschedulable_flush = flags.unschedulable_flush_seconds(args)
    queue.add(make_pod("a"))
    fail(queue, "a")
    clock.advance(90.001)
    queue.flush_unschedulable()
    assert queue.counts()[UNSCHEDULABLE] == 0


# --- -v and the other logging flags ----------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["-v=4"], ["-v4"], ["-v", "4"], ["--v=4"], ["--v", "4"]],
    ids=["dash-equals", "attached", "dash-space", "double-equals", "double-space"],
)
def test_v_spellings(argv: list[str]) -> None:
    """klog's -v in every spelling pflag takes, `-v=2` (single dash with =) included."""
    assert run_args(*argv).verbosity == 4


@pytest.mark.parametrize(
    ("verbosity", "berth", "library"),
    [
        pytest.param(0, logging.INFO, logging.WARNING, id="v0-summary"),
        pytest.param(2, logging.INFO, logging.INFO, id="v2-default"),
        pytest.param(4, logging.DEBUG, logging.INFO, id="v4-debug"),
        pytest.param(6, logging.DEBUG, logging.DEBUG, id="v6-libraries-debug"),
    ],
)
def test_v_levels(verbosity: int, berth: int, library: int) -> None:
    """-v maps onto Python levels (scheduler/logs.py says how)."""
    logs.setup(logs.LogOptions(verbosity=verbosity))
    try:
        assert logging.getLogger("berth").getEffectiveLevel() == berth
        assert logging.getLogger("aiohttp.client").getEffectiveLevel() == library
    finally:
        logs.setup("info")


def test_log_level_wins_over_v() -> None:
    logs.setup(logs.LogOptions(verbosity=6, level="warning"))
    try:
        assert logging.getLogger("berth").getEffectiveLevel() == logging.WARNING
    finally:
        logs.setup("info")


def test_vmodule_lowers_the_level_for_matching_files(capsys: pytest.CaptureFixture[str]) -> None:
    """--vmodule (text format): debug lines of matching source files only."""
    logs.setup(logs.LogOptions(format="text", vmodule="test_kube_*=4"))
    try:
        logging.getLogger("berth.anything").debug("from this file", extra={"k": 1})
    finally:
        logs.setup("info")
    err = capsys.readouterr().err
    assert '] "from this file" k=1' in err and err.startswith("D")


# --- feature gates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("Foo=true", "unrecognized feature gate: Foo", id="unknown"),
        pytest.param(
            "NodeDeclaredFeatures=false",
            "cannot set feature gate NodeDeclaredFeatures to false, feature is locked to true",
            id="locked-ga",
        ),
        pytest.param("GenericWorkload", "missing bool value for GenericWorkload", id="no-value"),
        pytest.param(
            "GenericWorkload=yes",
            'invalid value of GenericWorkload=yes, err: strconv.ParseBool: parsing "yes": '
            "invalid syntax",
            id="not-a-bool",
        ),
        pytest.param("wardle:A=true", "component not registered: wardle", id="component"),
        pytest.param(
            "GenericWorkload=true,kube:OpportunisticBatching=false",
            "set kube feature gates with default empty prefix or kube: prefix consistently",
            id="mixed-prefixes",
        ),
        pytest.param(
            "GenericWorkload=false,TopologyAwareWorkloadScheduling=true",
            "TopologyAwareWorkloadScheduling is enabled, but depends on features that are "
            "disabled: [GenericWorkload]",
            id="dependency",
        ),
    ],
)
def test_refused_gates(value: str, message: str) -> None:
    """component-base's messages, word for word."""
    with pytest.raises(features.FeatureGateError) as err:
        features.parse([value])
    assert message in str(err.value)


def test_gate_values() -> None:
    """Upstream defaults (GenericWorkload excepted: on in berth), `kube:` prefix, repeated
    flags (the later value wins), a locked gate set to its own value, AllAlpha."""
    assert features.FeatureGates().enabled("SchedulerAsyncAPICalls") is False
    assert features.FeatureGates().enabled("OpportunisticBatching") is True
    assert features.FeatureGates().enabled("GenericWorkload") is True
    gates = features.parse(
        ["kube:OpportunisticBatching=false", "kube:OpportunisticBatching=true,kube:AllAlpha=t"]
    )
    assert gates.enabled("OpportunisticBatching")
    assert gates.enabled("TaintTolerationComparisonOperators")  # alpha, via AllAlpha
    assert features.parse(["DynamicResourceAllocation=true"]).explicitly_set(
        "DynamicResourceAllocation"
    )
    assert set(features.FeatureGates().values()) >= features.SCHEDULER_GATES


def test_gates_berth_does_not_act_on_are_named() -> None:
    """Set away from their default, scheduler gates berth does not wire get one warning."""
    gates = features.parse(["SchedulerAsyncAPICalls=true,OpportunisticBatching=false"])
    assert features.unhonoured(gates) == ["SchedulerAsyncAPICalls"]
    assert features.unhonoured(features.parse(["SchedulerAsyncAPICalls=false"])) == []


def test_generic_workload_off_drops_gang_scheduling_from_the_defaults() -> None:
    """Upstream appends GangScheduling to the default plugins only with GenericWorkload on."""
    assert ("GangScheduling", 0) in plugins.defaults()
    with features.overridden({"GenericWorkload": False}):
        assert "GangScheduling" not in dict(plugins.defaults())
        names = [p["name"] for p in to_v1(parse({**_V1}, KNOWN))["profiles"][0]["plugins"]
                 ["multiPoint"]["enabled"]]  # fmt: skip
        assert "GangScheduling" not in names


@pytest.mark.parametrize(
    ("operator", "value", "taint", "tolerated"),
    [
        pytest.param("Lt", "10", "5", True, id="lt-below"),
        pytest.param("Lt", "10", "10", False, id="lt-equal"),
        pytest.param("Gt", "10", "11", True, id="gt-above"),
        pytest.param("Gt", "10", "010", False, id="leading-zero"),
        pytest.param("Gt", "x", "11", False, id="not-a-number"),
    ],
)
def test_taint_comparison_operators_gate(
    operator: str, value: str, taint: str, tolerated: bool
) -> None:
    """Lt/Gt tolerate nothing with the gate off (v1.37's default), compare int64s with it on."""
    toleration, node_taint = Toleration("k", operator, value, ""), Taint("k", taint, "NoSchedule")
    assert not toleration.tolerates(node_taint)
    with features.overridden({"TaintTolerationComparisonOperators": True}):
        assert toleration.tolerates(node_taint) is tolerated


# --- the command line as a whole -------------------------------------------------------------

_V1 = {"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration"}


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        pytest.param(["--feature-gates=Foo=true"], "--feature-gates: unrecognized", id="gate"),
        pytest.param(
            ["--feature-gates=DynamicResourceAllocation=false"], "locked to true", id="locked"
        ),
        pytest.param(["--leader-elect=maybe"], "argument --leader-elect:", id="bool"),
        pytest.param(["--leader-elect-retry-period=2"], "--leader-elect-retry-period", id="dur"),
        pytest.param(["-v=x"], "argument -v/--v", id="v"),
        pytest.param(["--logging-format=xml"], "argument --logging-format", id="format"),
        pytest.param(["--kube-api-burst=1e9"], "argument --kube-api-burst", id="int32"),
        pytest.param(["--vmodule=cycle=4"], "vmodule: Forbidden", id="vmodule-json"),
        pytest.param(
            ["--log-json-split-stream"], "Feature LoggingAlphaOptions is disabled", id="alpha"
        ),
        pytest.param(["--emulated-version=1.35"], "argument --emulated-version", id="emulated"),
        pytest.param(
            ["--show-hidden-metrics-for-version=1.30"], "--show-hidden-metrics", id="hidden"
        ),
        pytest.param(["--no-such-flag"], "--no-such-flag", id="unknown"),
        pytest.param(
            ["--leader-elect-lease-duration=1s"], "leaderElection.leaseDuration", id="invalid"
        ),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(
    argv: list[str], names: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2, the flag (or the field it sets) named, no traceback."""
    assert exit_code(["run", *argv]) == 2
    err = capsys.readouterr().err
    assert names in err and "Traceback" not in err


def exit_code(argv: list[str]) -> int:
    """cli.main's return value, or the code argparse exits with."""
    try:
        return cli.main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


def test_every_kubeadm_flag_is_accepted() -> None:
    """kubeadm v1.37's kube-scheduler static pod command (getSchedulerCommand), as is."""
    conf = "/etc/kubernetes/scheduler.conf"
    args = run_args(
        f"--authentication-kubeconfig={conf}",
        f"--authorization-kubeconfig={conf}",
        "--bind-address=127.0.0.1",
        f"--kubeconfig={conf}",
        "--leader-elect=true",
    )
    assert args.kubeconfig == conf and args.leader_elect is True


# --- --write-config-to and the v1 document ----------------------------------------------------


def test_write_config_to_writes_the_defaulted_v1_and_exits_0(tmp_path: Path) -> None:
    """Without --config: upstream's defaults plus the flags; no cluster needed."""
    out = tmp_path / "written.yaml"
    assert cli.main(["run", f"--write-config-to={out}", "--kube-api-qps=7"]) == 0
    written = yaml.safe_load(out.read_text())
    assert written["apiVersion"] == "kubescheduler.config.k8s.io/v1"
    assert written["clientConnection"]["qps"] == 7
    assert written["profiles"][0]["schedulerName"] == "default-scheduler"
    assert parse(written, KNOWN).client_connection.qps == 7


def test_write_config_to_an_unwritable_path_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["run", f"--write-config-to={tmp_path}/no/such/dir/c.yaml"]) == 1
    assert "--write-config-to" in capsys.readouterr().err
