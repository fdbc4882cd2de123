"""scheduler.serving: `berth run`'s serving flags, parsed as kube-scheduler parses them, and
every bad value named by its flag (berth run exits 2)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from scheduler import cli
from scheduler.serving import (
    ServingError,
    ServingOptions,
    add_serving_flags,
    go_duration,
    serving_options,
)


def parse(*argv: str) -> ServingOptions:
    parser = argparse.ArgumentParser()
    add_serving_flags(parser)
    return serving_options(parser.parse_args(list(argv)))


def test_defaults_are_kube_schedulers() -> None:
    """No flags: HTTPS on 0.0.0.0:10259, no plain port, kube-scheduler's authn/authz defaults."""
    options = parse()
    assert options == ServingOptions()
    assert (options.secure_port, options.bind_address, options.port) == (10259, "0.0.0.0", 0)
    assert options.authorization_always_allow_paths == ("/healthz", "/readyz", "/livez")
    assert options.authorization_always_allow_groups == ("system:masters",)
    assert options.authentication_tolerate_lookup_failure is True
    assert options.authentication_skip_lookup is False
    assert options.authentication_token_webhook_cache_ttl == 10.0
    assert options.authorization_webhook_cache_authorized_ttl == 10.0
    assert options.authorization_webhook_cache_unauthorized_ttl == 10.0
    assert options.tls_min_version == "VersionTLS12"
    assert not options.serves_plain


@pytest.mark.parametrize(
    ("argv", "field", "value"),
    [
        pytest.param(["--secure-port=0", "--port=8080"], "port", 8080, id="plain-port"),
        pytest.param(["--secure-port", "0"], "secure_port", 0, id="no-https"),
        pytest.param(["--bind-address=::"], "bind_address", "::", id="ipv6-any"),
        pytest.param(["--authentication-skip-lookup"], "authentication_skip_lookup", True,
                     id="bare-bool-flag"),
        pytest.param(["--authentication-tolerate-lookup-failure=false"],
                     "authentication_tolerate_lookup_failure", False, id="bool-false"),
        pytest.param(["--authentication-token-webhook-cache-ttl=1m30s"],
                     "authentication_token_webhook_cache_ttl", 90.0, id="go-duration"),
        pytest.param(["--authorization-webhook-cache-unauthorized-ttl=0"],
                     "authorization_webhook_cache_unauthorized_ttl", 0.0, id="zero-ttl"),
        pytest.param(["--authorization-always-allow-paths=/healthz,/metrics*"],
                     "authorization_always_allow_paths", ("/healthz", "/metrics*"),
                     id="always-allow-prefix"),
        pytest.param(["--authorization-always-allow-paths="], "authorization_always_allow_paths",
                     (), id="always-allow-nothing"),
        pytest.param(["--tls-min-version=VersionTLS13"], "tls_min_version", "VersionTLS13",
                     id="tls13"),
        pytest.param(["--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
                     "tls_cipher_suites", ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",),
                     id="cipher-suite"),
    ],
)  # fmt: skip
def test_flag_values(argv: list[str], field: str, value: object) -> None:
    """Each flag lands in its field in Go's value syntax."""
    assert getattr(parse(*argv), field) == value


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--secure-port=-1"], "--secure-port: '-1' is not a port number", id="neg"),
        pytest.param(["--port=65536"], "--port: '65536' is not a port number", id="too-big"),
        pytest.param(["--port=http"], "--port: 'http' is not a port number", id="not-a-number"),
        pytest.param(["--port=10259"], "--port: 10259 is also the --secure-port", id="same-port"),
        pytest.param(["--bind-address=localhost"], "--bind-address: 'localhost' is not an IP",
                     id="bind-hostname"),
        pytest.param(["--tls-cert-file=/nonexistent/c.crt"],
                     "--tls-cert-file and --tls-private-key-file must be given together",
                     id="cert-without-key"),
        pytest.param(["--tls-cert-file=/nonexistent/c", "--tls-private-key-file=/nonexistent/k"],
                     "--tls-cert-file: /nonexistent/c: no such file", id="missing-cert"),
        pytest.param(["--client-ca-file=/nonexistent/ca"],
                     "--client-ca-file: /nonexistent/ca: no such file", id="missing-ca"),
        pytest.param(["--tls-min-version=TLS1.2"], "--tls-min-version: 'TLS1.2' is not one of",
                     id="tls-version-name"),
        pytest.param(["--tls-cipher-suites=RC4"], "--tls-cipher-suites: cipher suite RC4 not",
                     id="unknown-suite"),
        pytest.param(["--authentication-skip-lookup=yes"],
                     "--authentication-skip-lookup: 'yes' is not a boolean", id="bad-bool"),
        pytest.param(["--authentication-token-webhook-cache-ttl=10"],
                     "--authentication-token-webhook-cache-ttl: '10' is not a duration",
                     id="duration-without-unit"),
        pytest.param(["--authorization-webhook-cache-authorized-ttl=-1s"],
                     "--authorization-webhook-cache-authorized-ttl: '-1s' is not a duration",
                     id="negative-duration"),
        pytest.param(["--authorization-always-allow-paths=/a*b"],
                     "--authorization-always-allow-paths: '/a*b': '*' may only end a path",
                     id="star-inside-a-path"),
    ],
)  # fmt: skip
def test_bad_values_name_their_flag(argv: list[str], message: str) -> None:
    """A bad value raises ServingError whose message starts with the flag."""
    with pytest.raises(ServingError) as err:
        parse(*argv)
    assert str(err.value).startswith(message), str(err.value)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), ("1.5s", 1.5), ("0", 0.0)],
)
def test_go_durations(text: str, seconds: float) -> None:
    """Go's time.ParseDuration syntax."""
    assert go_duration("--x", text) == pytest.approx(seconds)


def test_berth_run_exits_2_on_a_bad_serving_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """berth run prints the flag's error and exits 2, before loading anything else."""
    config = tmp_path / "c.yaml"
    config.write_text(
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
    )
    argv = ["run", "--config", str(config), "--kubeconfig", "/nonexistent", "--secure-port=x"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "berth run: --secure-port: 'x' is not a port number" in err
    assert "Traceback" not in err


def test_local_options_serve_plain_http_only() -> None:
    """ServingOptions.local(): what in-process tests and the demo use."""
    local = ServingOptions.local()
    assert (local.secure_port, local.bind_address, local.serves_plain) == (0, "127.0.0.1", True)
