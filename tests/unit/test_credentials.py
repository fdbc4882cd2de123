"""Credential sources (scheduler.kube.credentials): a token file re-read as client-go's cached
file token source re-reads it, an exec plugin (a script the test writes) run again when its
credential expires or is refused, and what a kubeconfig's user turns into."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from scheduler.kube.client import Credentials
from scheduler.kube.credentials import (
    Auth,
    CredentialError,
    ExecConfig,
    ExecPlugin,
    TokenFile,
    cluster_info,
)

V1 = "client.authentication.k8s.io/v1"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# --- token files ----------------------------------------------------------------------------


async def test_a_rotated_token_file_is_read_again_after_fifty_seconds(tmp_path: Path) -> None:
    """client-go's cached file token source: the token is kept for a minute less the 10 s
    leeway, then the file is read again and a rotated token is used."""
    path = tmp_path / "token"
    path.write_text("A\n")
    clock = Clock()
    source = TokenFile(str(path), clock=clock)
    assert (await source.get()).token == "A"
    path.write_text("B")
    clock.now += 49.0
    assert (await source.get()).token == "A"
    clock.now += 1.0
    assert (await source.get()).token == "B"
    assert source.reads == 2


async def test_a_refused_token_is_read_again_at_once_but_only_once(tmp_path: Path) -> None:
    """After a 401, refresh(used) reads the file now; a second caller holding the same stale
    token gets the new one without another read."""
    path = tmp_path / "token"
    path.write_text("A")
    source = TokenFile(str(path), clock=Clock())
    used = await source.get()
    path.write_text("B")
    fresh = await source.refresh(used)
    assert fresh.token == "B"
    assert (await source.refresh(used)) is fresh
    assert source.reads == 2


async def test_an_unreadable_token_file_keeps_the_cached_token(tmp_path: Path) -> None:
    """As client-go ("Unable to rotate token"): a cached token outlives a failed re-read;
    without one, the error names the file."""
    path = tmp_path / "token"
    path.write_text("A")
    clock = Clock()
    source = TokenFile(str(path), clock=clock)
    await source.get()
    path.unlink()
    clock.now += 60
    assert (await source.get()).token == "A"
    with pytest.raises(CredentialError, match=f"token file {path}: No such file"):
        await TokenFile(str(path)).get()
    path.write_text("  \n")
    with pytest.raises(CredentialError, match=f"token file {path}: empty"):
        await TokenFile(str(path)).get()


# --- exec plugins ---------------------------------------------------------------------------

PLUGIN = """\
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "runs"), "a") as f:
    f.write(os.environ["KUBERNETES_EXEC_INFO"] + "\\n")
status = json.load(open(os.path.join(here, "status.json")))
if status.get("fail"):
    print(status["fail"], file=sys.stderr)
    sys.exit(3)
print(json.dumps({"apiVersion": status.pop("apiVersion", "%s"), "kind": "ExecCredential",
                  "status": status}))
"""


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    """A credential plugin: prints status.json's content as an ExecCredential's status, and
    appends the KUBERNETES_EXEC_INFO it was given to `runs`."""
    script = tmp_path / "plugin.py"
    script.write_text(PLUGIN % V1)
    return script


def exec_config(script: Path, **stanza: object) -> ExecConfig:
    body = {"command": sys.executable, "args": [str(script)], "apiVersion": V1}
    body.setdefault("interactiveMode", "Never")
    body.update(stanza)
    return ExecConfig.parse(body, "users[u].user.exec")


def runs(script: Path) -> list[dict[str, object]]:
    lines = (script.parent / "runs").read_text().splitlines()
    return [json.loads(line) for line in lines]


def set_status(script: Path, **status: object) -> None:
    (script.parent / "status.json").write_text(json.dumps(status))


async def test_an_exec_credential_is_cached_until_it_expires(plugin: Path) -> None:
    """The plugin runs once; its token is used until expirationTimestamp, then it runs again."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    expires = now + timedelta(minutes=5)
    set_status(plugin, token="A", expirationTimestamp=expires.isoformat().replace("+00:00", "Z"))
    source = ExecPlugin(exec_config(plugin), now=lambda: now)
    assert (await source.get()).token == "A"
    set_status(plugin, token="B")
    now += timedelta(minutes=4)
    assert (await source.get()).token == "A"
    now += timedelta(minutes=1, seconds=1)
    assert (await source.get()).token == "B"
    assert source.runs == 2
    info = runs(plugin)[0]
    assert info == {"kind": "ExecCredential", "apiVersion": V1, "spec": {"interactive": False}}


async def test_a_refused_exec_credential_is_replaced_once(plugin: Path) -> None:
    """A 401 runs the plugin again (exec.go maybeRefreshCreds), unless the credential the
    request carried has been replaced already."""
    set_status(plugin, token="A")
    source = ExecPlugin(exec_config(plugin))
    used = await source.get()
    set_status(plugin, token="B")
    assert (await source.get()) is used  # no expiry: cached for good
    fresh = await source.refresh(used)
    assert fresh.token == "B"
    assert (await source.refresh(used)) is fresh
    assert source.runs == 2


async def test_exec_env_args_and_cluster_info_reach_the_plugin(plugin: Path) -> None:
    """`env` is added to berth's environment, and with provideClusterInfo the cluster (its
    CA as data) goes into KUBERNETES_EXEC_INFO's spec.cluster."""
    script = plugin.parent / "env_plugin.py"
    script.write_text(
        PLUGIN.replace("status = ", 'assert os.environ["FLAVOUR"] == "mint"\nstatus = ') % V1
    )
    set_status(script, token="A")
    (plugin.parent / "ca.crt").write_bytes(b"CA")
    cluster = cluster_info(
        {"server": "https://k:6443", "certificate-authority": "ca.crt"}, str(plugin.parent)
    )
    config = ExecConfig.parse(
        {
            "command": sys.executable,
            "args": [str(script)],
            "apiVersion": V1,
            "interactiveMode": "IfAvailable",
            "env": [{"name": "FLAVOUR", "value": "mint"}],
            "provideClusterInfo": True,
        },
        "users[u].user.exec",
        cluster,
    )
    assert (await ExecPlugin(config).get()).token == "A"
    spec = runs(script)[0]["spec"]
    assert spec == {
        "interactive": False,
        "cluster": {"server": "https://k:6443", "certificate-authority-data": "Q0E="},
    }


@pytest.mark.parametrize(
    ("status", "message"),
    [
        pytest.param({"fail": "no such user"}, "exit code 3: no such user", id="exit-code"),
        pytest.param({}, "didn't return a token or cert/key pair", id="empty-status"),
        pytest.param({"clientKeyData": "k"}, "only certificate or key", id="key-without-cert"),
        pytest.param(
            {"token": "A", "apiVersion": "client.authentication.k8s.io/v1beta1"},
            "plugin returned version client.authentication.k8s.io/v1beta1",
            id="other-version",
        ),
        pytest.param(
            {"token": "A", "expirationTimestamp": "soon"}, "not RFC 3339", id="bad-expiry"
        ),
    ],
)
async def test_a_failing_plugin_is_named_with_its_reason(
    plugin: Path, status: dict[str, object], message: str
) -> None:
    """Errors name the plugin and say why (exec.go's messages)."""
    set_status(plugin, **status)
    with pytest.raises(CredentialError, match=f"exec plugin {sys.executable}: .*{message}"):
        await ExecPlugin(exec_config(plugin)).get()


async def test_a_missing_plugin_is_named() -> None:
    config = ExecConfig.parse(
        {"command": "/nonexistent/berth-plugin", "apiVersion": V1, "interactiveMode": "Never"},
        "users[u].user.exec",
    )
    with pytest.raises(CredentialError, match="exec plugin /nonexistent/berth-plugin: cannot run"):
        await ExecPlugin(config).get()


async def test_a_plugin_that_hangs_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "hang.py"
    script.write_text("import time\ntime.sleep(60)\n")
    source = ExecPlugin(exec_config(script), timeout=0.5)
    with pytest.raises(CredentialError, match=r"no answer within 0\.5s"):
        await source.get()


@pytest.mark.parametrize(
    ("stanza", "message"),
    [
        pytest.param({"command": ""}, r"users\[u\]\.user\.exec\.command: required", id="command"),
        pytest.param(
            {"apiVersion": "client.authentication.k8s.io/v1alpha1"},
            r"exec\.apiVersion: must be one of",
            id="api-version",
        ),
        pytest.param(
            {"interactiveMode": ""}, r"exec\.interactiveMode: required for", id="v1-needs-mode"
        ),
        pytest.param({"interactiveMode": "Sometimes"}, r"invalid: 'Sometimes'", id="bad-mode"),
        pytest.param({"interactiveMode": "Always"}, r"Always: berth runs unattended", id="always"),
        pytest.param({"args": "a b"}, r"exec\.args: must be a list", id="args"),
        pytest.param({"env": [{"value": "x"}]}, r"exec\.env\[0\]: must have a name", id="env"),
    ],
)
def test_bad_exec_stanzas_name_their_field(stanza: dict[str, object], message: str) -> None:
    with pytest.raises(CredentialError, match=message):
        exec_config(Path("plugin.py"), **stanza)


def test_v1beta1_defaults_interactive_mode() -> None:
    config = exec_config(
        Path("p"), apiVersion="client.authentication.k8s.io/v1beta1", interactiveMode=""
    )
    assert config.interactive_mode == "IfAvailable"


# --- kubeconfigs -----------------------------------------------------------------------------


def write_kubeconfig(tmp_path: Path, user: dict[str, object]) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


async def test_a_kubeconfig_token_file_is_a_token_file_source(tmp_path: Path) -> None:
    """A relative tokenFile is found next to the kubeconfig, as kubectl finds it."""
    (tmp_path / "tok").write_text("A")
    creds = Credentials.load(str(write_kubeconfig(tmp_path, {"tokenFile": "tok"})))
    assert creds.token == "A"
    assert isinstance(creds.source, TokenFile)
    assert creds.source.path == str(tmp_path / "tok")


async def test_a_kubeconfig_exec_plugin_runs_on_first_use_only(
    tmp_path: Path, plugin: Path
) -> None:
    """Loading a kubeconfig does not run its plugin (the kubernetes package would, blocking);
    the first request does."""
    set_status(plugin, token="A")
    user = {"exec": {"command": sys.executable, "args": [str(plugin)], "apiVersion": V1,
                     "interactiveMode": "Never"}}  # fmt: skip
    creds = Credentials.load(str(write_kubeconfig(tmp_path, user)))
    assert not (plugin.parent / "runs").exists()
    assert isinstance(creds.source, ExecPlugin)
    assert (await creds.credential_source().get()).token == "A"


def test_a_bad_exec_stanza_fails_the_load_naming_its_field(tmp_path: Path) -> None:
    user = {"exec": {"command": "x", "apiVersion": V1}}
    with pytest.raises(CredentialError, match=r"users\[u\]\.user\.exec\.interactiveMode"):
        Credentials.load(str(write_kubeconfig(tmp_path, user)))


def test_a_plain_token_stays_static(tmp_path: Path) -> None:
    creds = Credentials.load(str(write_kubeconfig(tmp_path, {"token": "T"})))
    assert creds.source is None
    assert creds.token == "T"


def test_auth_compares_by_content_only_where_asked() -> None:
    a, b = Auth("x"), Auth("x")
    assert a != b and a.same(b)
    assert not Auth("x").same(Auth("y"))
