"""Scheduler extenders: the `extenders` configuration (upstream's decoding, defaults and
validation messages), the scoring arithmetic, the HTTP client against a real extender
(tests/extender.py), and the scheduling cycle that calls it (filter, prioritize, bind, the
diagnosis, and revalidation when the table moves while the extender answers)."""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import AsyncIterator
from typing import Any

import pytest

from scheduler import explain
from scheduler.config import ConfigError, parse
from scheduler.cycle import Attempt
from scheduler.extender_client import (
    ExtenderError,
    HTTPExtender,
    build_extenders,
    extender_scores,
)
from scheduler.extenders import DEFAULT_TIMEOUT_S, ExtenderConfig, parse_extenders
from scheduler.model import compile_pod
from scheduler.pluginargs import NodeResourcesFitArgs
from tests.builders import make_node, make_pod
from tests.extender import MESSAGE, TestExtender, extender_config
from tests.unit.test_cycle import NAME, World

JSON = dict[str, Any]
ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"
KNOWN = ("NodeResourcesFit", "DefaultBinder", "PrioritySort")


def doc(*extenders: JSON) -> JSON:
    return {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "extenders": list(extenders),
    }


def errors_of(document: JSON) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(document, KNOWN)
    return caught.value.errors


# --- configuration ---------------------------------------------------------------------------


def test_defaults() -> None:
    """Only urlPrefix given: no verbs, weight 0, upstream's 5 s timeout, nothing ignorable."""
    (extender,) = parse(doc({"urlPrefix": "http://e:8888/x"}), KNOWN).extenders
    assert extender == ExtenderConfig(url_prefix="http://e:8888/x")
    assert extender.timeout_s == DEFAULT_TIMEOUT_S == 5.0
    assert extender.name == "http://e:8888/x"


def test_every_field_decoded() -> None:
    """Each upstream field lands in its place; []byte fields are base64 in YAML."""
    pem = b"-----BEGIN CERTIFICATE-----\n"
    (extender,) = parse(
        doc(
            {
                "urlPrefix": "https://e/x",
                "filterVerb": "f",
                "preemptVerb": "pr",
                "prioritizeVerb": "p",
                "weight": 3,
                "bindVerb": "b",
                "enableHTTPS": True,
                "tlsConfig": {
                    "insecure": True,
                    "serverName": "e.example",
                    "caData": base64.b64encode(pem).decode(),
                    "certFile": "/c",
                    "keyFile": "/k",
                },
                "httpTimeout": "1m30s",
                "nodeCacheCapable": True,
                "managedResources": [{"name": "example.com/gpu", "ignoredByScheduler": True}],
                "ignorable": True,
            }
        ),
        KNOWN,
    ).extenders
    assert (extender.filter_verb, extender.preempt_verb, extender.prioritize_verb) == (
        "f",
        "pr",
        "p",
    )
    assert (extender.weight, extender.bind_verb, extender.timeout_s) == (3, "b", 90.0)
    assert extender.tls is not None and extender.tls.ca_data == pem
    assert extender.tls.server_name == "e.example" and extender.tls.cert_file == "/c"
    assert extender.node_cache_capable and extender.ignorable and extender.enable_https


def test_ignored_by_scheduler_goes_to_node_resources_fit() -> None:
    """A managed resource ignoredByScheduler becomes NodeResourcesFit's ignoredResources in
    every profile (upstream's buildExtenders)."""
    config = parse(
        doc(
            {
                "urlPrefix": "http://e",
                "managedResources": [
                    {"name": "example.com/a", "ignoredByScheduler": True},
                    {"name": "example.com/b"},
                ],
            }
        ),
        KNOWN,
    )
    args = config.profiles[0].plugin_config["NodeResourcesFit"]
    assert isinstance(args, NodeResourcesFitArgs)
    assert args.ignored_resources == ("example.com/a",)


@pytest.mark.parametrize(
    ("extenders", "expected"),
    [
        pytest.param(
            [{"urlPrefix": "http://e", "prioritizeVerb": "p"}],
            ["extenders[0].weight: Invalid value: 0: must have a positive weight applied to it"],
            id="prioritizer-without-weight",
        ),
        pytest.param(
            [{"urlPrefix": "http://e", "prioritizeVerb": "p", "weight": -2}],
            ["extenders[0].weight: Invalid value: -2: must have a positive weight applied to it"],
            id="negative-weight",
        ),
        pytest.param(
            [
                {"urlPrefix": "http://a", "bindVerb": "bind"},
                {"urlPrefix": "http://b", "bindVerb": "bind"},
            ],
            [
                'extenders: Invalid value: "found 2 extenders implementing bind": '
                "only one extender can implement bind"
            ],
            id="two-binders",
        ),
        pytest.param(
            [{"urlPrefix": "http://e", "managedResources": [{"name": "cpu"}]}],
            [
                'extenders[0].managedResources[0].name: Invalid value: "cpu": '
                "is an invalid extended resource name"
            ],
            id="native-resource-managed",
        ),
        pytest.param(
            [{"urlPrefix": "http://e", "managedResources": [{"name": "kubernetes.io/x"}]}],
            [
                'extenders[0].managedResources[0].name: Invalid value: "kubernetes.io/x": '
                "is an invalid extended resource name"
            ],
            id="kubernetes-io-prefix",
        ),
        pytest.param(
            [
                {"urlPrefix": "http://a", "managedResources": [{"name": "example.com/g"}]},
                {"urlPrefix": "http://b", "managedResources": [{"name": "example.com/g"}]},
            ],
            [
                'extenders[1].managedResources[0].name: Invalid value: "example.com/g": '
                "duplicate extender managed resource name"
            ],
            id="resource-managed-twice",
        ),
        pytest.param(
            [{"urlPrefix": "http://e", "weight": "3", "ignorable": "yes", "bogus": 1}],
            [
                'extenders[0].bogus: unknown field "bogus"',
                'extenders[0].weight: must be an integer (got "3")',
                'extenders[0].ignorable: must be true or false (got "yes")',
            ],
            id="wrong-types-and-unknown-field",
        ),
        pytest.param(
            [{"urlPrefix": "http://e", "httpTimeout": "5 seconds"}],
            ['extenders[0].httpTimeout: must be a duration such as "15s" (got "5 seconds")'],
            id="bad-duration",
        ),
        pytest.param(
            [{"urlPrefix": "http://e", "tlsConfig": {"caData": "not base64!"}}],
            ['extenders[0].tlsConfig.caData: must be base64-encoded (got "not base64!")'],
            id="bad-base64",
        ),
        pytest.param(
            [{"filterVerb": "f"}],
            ["extenders[0].urlPrefix: Required value: the extender's URL"],
            id="berth-url-required",
        ),
        pytest.param(
            [{"urlPrefix": "e:80"}],
            ['extenders[0].urlPrefix: Invalid value: "e:80": must be an http:// or https:// URL'],
            id="berth-url-scheme",
        ),
        pytest.param(
            [{"urlPrefix": "http://"}],
            [
                'extenders[0].urlPrefix: Invalid value: "http://": '
                "must name a host (http://HOST[:PORT]/PATH)"
            ],
            id="berth-url-without-host",
        ),
        pytest.param(
            [{"urlPrefix": "http://host:notaport/x"}],
            [
                'extenders[0].urlPrefix: Invalid value: "http://host:notaport/x": '
                "must have a port number between 0 and 65535 after the host"
            ],
            id="berth-url-bad-port",
        ),
        pytest.param(
            [{"urlPrefix": "http://e", "prioritizeVerb": "p", "weight": "five"}],
            ['extenders[0].weight: must be an integer (got "five")'],
            id="undecodable-weight-is-not-also-zero",
        ),
        pytest.param(
            ["not a mapping", {"urlPrefix": "http://e", "prioritizeVerb": "p", "weight": 0}],
            [
                'extenders[0]: must be a mapping (got "not a mapping")',
                "extenders[1].weight: Invalid value: 0: must have a positive weight applied to it",
            ],
            id="entry-not-a-mapping-reported-once",
        ),
    ],
)
def test_validation_messages(extenders: list[JSON], expected: list[str]) -> None:
    """Upstream's validateExtenders messages, each with its field path; all reported."""
    assert sorted(errors_of(doc(*extenders))) == sorted(expected)


def test_bad_tls_file_is_a_config_error() -> None:
    """A CA file that cannot be read fails at start, naming the extender's tlsConfig."""
    (config,) = parse(
        doc({"urlPrefix": "https://e", "tlsConfig": {"caFile": "/nonexistent/ca.pem"}}), KNOWN
    ).extenders
    with pytest.raises(ConfigError) as caught:
        build_extenders([config], lambda name: None)
    assert caught.value.errors[0].startswith("extenders[0].tlsConfig: ")


def test_parse_extenders_is_empty_without_the_field() -> None:
    """No `extenders`: an empty tuple, nothing reported."""
    from scheduler.decode import Section

    errs: list[str] = []
    assert parse_extenders(Section({}, "", {"extenders"}, errs)) == ()
    assert errs == []


# --- scoring arithmetic ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        pytest.param([(1, [("a", 10), ("b", 3)])], {"a": 100, "b": 30}, id="weight-1-scaled-x10"),
        pytest.param([(5, [("a", 2)])], {"a": 100}, id="weight-times-score-times-10"),
        pytest.param(
            [(1, [("a", 4)]), (2, [("a", 1), ("b", 10)])],
            {"a": 60, "b": 200},
            id="two-extenders-summed",
        ),
        pytest.param([], {}, id="no-answers"),
    ],
)
def test_extender_scores(answers: list[tuple[int, list[tuple[str, int]]]], expected: JSON) -> None:
    """score * weight * (MaxNodeScore 100 / MaxExtenderPriority 10), summed per node."""
    assert extender_scores(answers) == expected


# --- the client against a real extender ------------------------------------------------------


NODES = {
    f"n{i}": make_node(f"n{i}")
    .capacity(cpu="2", memory="4Gi", pods="10")
    .labels(**{ZONE: f"z{i % 3}", HOST: f"n{i}"})
    .obj_()
    for i in range(6)
}


@pytest.fixture
async def server() -> AsyncIterator[TestExtender]:
    ext = TestExtender(allowed=frozenset({"z1", "z2"}), scores={"n2": 10, "n4": 3})
    await ext.start()
    try:
        yield ext
    finally:
        await ext.stop()


def client_for(server: TestExtender, **extra: Any) -> HTTPExtender:
    (config,) = parse(doc(extender_config(server.url, **extra)), KNOWN).extenders
    return HTTPExtender(config, NODES.get)


async def test_filter_sends_nodes_and_reads_failed(server: TestExtender) -> None:
    """Nodes go as a NodeList of the raw objects; passed nodes and FailedNodes come back."""
    ext = client_for(server)
    pod = compile_pod(make_pod("p").obj_())
    try:
        result = await ext.filter(pod, list(NODES))
    finally:
        await ext.close()
    assert result.nodes == ("n1", "n2", "n4", "n5")
    assert result.failed == {"n0": MESSAGE, "n3": MESSAGE}
    assert server.calls == [("filter", "p", tuple(NODES))]


async def test_node_cache_capable_sends_names(server: TestExtender) -> None:
    """nodeCacheCapable: NodeNames go and come back; the extender reads its own labels."""
    server.node_labels = {n: obj["metadata"]["labels"] for n, obj in NODES.items()}
    ext = client_for(server, nodeCacheCapable=True)
    pod = compile_pod(make_pod("p").obj_())
    try:
        result = await ext.filter(pod, ["n0", "n1"])
        scores = await ext.prioritize(pod, ["n1", "n2"])
    finally:
        await ext.close()
    assert result.nodes == ("n1",)
    assert scores == [("n1", 0), ("n2", 10)]


async def test_non_200_is_an_error(server: TestExtender) -> None:
    """Any status but 200 fails the call with upstream's wording."""
    server.fail_with = 500
    ext = client_for(server)
    pod = compile_pod(make_pod("p").obj_())
    try:
        with pytest.raises(Exception, match=r"failed filter with extender at URL .*, code 500"):
            await ext.filter(pod, ["n0"])
    finally:
        await ext.close()


@pytest.mark.parametrize(
    ("managed", "pod", "interested"),
    [
        pytest.param([], make_pod("p"), True, id="no-managed-resources-every-pod"),
        pytest.param(["example.com/g"], make_pod("p").req(cpu="1"), False, id="not-requested"),
        pytest.param(
            ["example.com/g"], make_pod("p").req(**{"example.com/g": "1"}), True, id="requested"
        ),
        pytest.param(
            ["example.com/g"],
            make_pod("p").init_container({"example.com/g": "1"}),
            True,
            id="init-container-requests-it",
        ),
    ],
)
def test_is_interested(managed: list[str], pod: Any, interested: bool) -> None:
    """Upstream's IsInterested: containers and init containers, requests or limits."""
    entry = {"urlPrefix": "http://e", "managedResources": [{"name": n} for n in managed]}
    (config,) = parse(doc(entry), KNOWN).extenders
    assert HTTPExtender(config, NODES.get).is_interested(compile_pod(pod.obj_())) is interested


# --- the scheduling cycle --------------------------------------------------------------------


def world_with(server: TestExtender, **extra: Any) -> World:
    world = World(list(NODES.values()))
    (config,) = parse(doc(extender_config(server.url, **extra)), KNOWN).extenders
    world.scheduler.extenders = (HTTPExtender(config, NODES.get),)
    return world


async def schedule(world: World, raw: JSON) -> Attempt:
    world.queue.add(compile_pod(raw))
    entry = world.queue.pop_nowait()
    assert entry is not None
    consulted = world.scheduler._consulted(entry.pod)
    if not consulted:
        return world.scheduler.schedule_one(entry)
    return await world.scheduler.schedule_one_extended(entry, consulted)


def pod(name: str, cpu: str = "100m") -> JSON:
    return make_pod(name).scheduler(NAME).req(cpu=cpu).obj_()


async def test_cycle_places_on_the_extenders_best_node(server: TestExtender) -> None:
    """Filter keeps zones z1/z2; prioritize gives n2 10 * 10 = 100 points, so n2 wins. The
    prioritize call is counted in flight (scheduler_goroutines, prioritizing_extender)."""
    world = world_with(server)
    in_flight: list[int] = []
    world.scheduler._on_prioritizing = in_flight.append
    attempt = await schedule(world, pod("p"))
    assert in_flight == [1, -1]
    await world.scheduler.drain()
    assert attempt.node == "n2"
    assert world.handle.calls == [(f"{attempt.pod.key}", "n2")]
    assert attempt.scoring is not None
    top = attempt.scoring.top(1)[0]
    assert top["plugins"][server.url] == 100
    assert server.verbs("p") == ["filter", "prioritize"]


async def test_unschedulable_message_counts_extender_failures(server: TestExtender) -> None:
    """Nodes the extender failed count with its message, as upstream's FitError."""
    server.allowed = frozenset()
    world = world_with(server)
    attempt = await schedule(world, pod("p"))
    assert attempt.node == ""
    assert attempt.status is not None
    assert attempt.status.message.startswith(f"0/6 nodes are available: 6 {MESSAGE}.")
    assert attempt.diagnosis is not None
    assert attempt.diagnosis.by_plugin[f"Extender {server.url}"] == {MESSAGE: 6}
    # berth explain names the extender in its table of rejections.
    view = {
        "pod": "default/p",
        "queue": "unschedulable",
        "message": attempt.status.message,
        "total_nodes": 6,
        "by_plugin": attempt.diagnosis.by_plugin,
    }
    assert f"Extender {server.url}" in explain.render(view)


async def test_extender_error_fails_unless_ignorable(server: TestExtender) -> None:
    """A failing filter extender fails the attempt as an error; an ignorable one is skipped."""
    server.fail_with = 503
    world = world_with(server)
    attempt = await schedule(world, pod("p"))
    assert attempt.status is not None and "code 503" in attempt.status.message
    ignorable = world_with(server, ignorable=True)
    attempt = await schedule(ignorable, pod("q"))
    assert attempt.node  # placed by the plugins alone


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({"NodeNames": 5, "FailedNodes": "x"}, id="number-for-list"),
        pytest.param({"FailedNodes": "x"}, id="string-for-map"),
        pytest.param({"NodeNames": [1, 2]}, id="numbers-for-names"),
    ],
)
async def test_a_filter_answer_of_the_wrong_shape_is_the_extenders_error(
    server: TestExtender, answer: Any
) -> None:
    """JSON that does not decode into upstream's ExtenderFilterResult is that extender's error,
    as Go's json.Unmarshal fails: the attempt fails with it (no TypeError in the cycle), and an
    ignorable extender is skipped, the pod placed by the plugins alone."""
    server.answers = {"filter": answer}
    world = world_with(server, nodeCacheCapable=True)
    attempt = await schedule(world, pod("p"))
    assert (
        attempt.status is not None and "cannot decode its filter answer" in attempt.status.message
    )
    ignorable = world_with(server, nodeCacheCapable=True, ignorable=True)
    attempt = await schedule(ignorable, pod("q"))
    assert attempt.node


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param([{"Host": "n2", "Score": "high"}], id="text-score"),
        pytest.param([{"Host": "n2", "Score": 10}, 7], id="number-for-object"),
    ],
)
async def test_a_prioritize_answer_of_the_wrong_shape_only_loses_its_scores(
    server: TestExtender, answer: Any
) -> None:
    """A prioritize answer that does not decode is an error upstream ignores: the pod is
    placed on the filter's verdict and the plugins' scores."""
    server.answers = {"prioritize": answer}
    attempt = await schedule(world_with(server), pod("p"))
    assert attempt.status is None and attempt.node in {"n1", "n2", "n4", "n5"}


async def test_pods_it_does_not_manage_skip_the_extender(server: TestExtender) -> None:
    """managedResources set and not requested: the fast path, the extender never called."""
    world = world_with(server, managedResources=[{"name": "example.com/g"}])
    attempt = await schedule(world, pod("p"))
    assert attempt.node
    assert server.calls == []


async def test_binder_extender_binds_instead_of_default_binder(server: TestExtender) -> None:
    """An interested extender with a bindVerb binds; DefaultBinder is not called."""
    world = world_with(server, verbs=("filter", "prioritize", "bind"))
    attempt = await schedule(world, pod("p"))
    await world.scheduler.drain()
    assert attempt.node == "n2"
    assert ("bind", "p", ("n2",)) in server.calls
    assert world.handle.calls == []
    assert ("scheduled", attempt.pod.key, "n2") in world.reporter.events


async def test_table_moving_during_the_call_is_revalidated(server: TestExtender) -> None:
    """While the extender answers, a pod filling n2 (its favourite) lands in the cache: the
    cycle filters again after the await and places the pod elsewhere, never overcommitting."""
    server.delay = 0.2
    world = world_with(server)
    task = asyncio.create_task(schedule(world, pod("p", cpu="1")))
    while "prioritize" not in server.verbs("p"):
        await asyncio.sleep(0.01)
    world.bound(make_pod("filler").node("n2").req(cpu="2").obj_())
    attempt = await task
    await world.scheduler.drain()
    assert attempt.node in {"n1", "n4", "n5"}
    assert attempt.node == "n4"  # the extender's next best (3 points)


async def test_preempt_verb_filters_candidates(server: TestExtender) -> None:
    """Both full nodes are preemption candidates; n0's victim is the cheaper one, so plain
    preemption picks n0. The extender's preempt verb refuses n0: the pod is nominated to n1,
    with the victim the extender named there."""
    server.allowed = frozenset({"z0", "z1"})
    server.refuse_preemption_on = frozenset({"n0"})
    two = {name: NODES[name] for name in ("n0", "n1")}
    world = World(list(two.values()))
    (config,) = parse(
        doc(extender_config(server.url, verbs=("filter", "prioritize", "preempt"))), KNOWN
    ).extenders
    world.scheduler.extenders = (HTTPExtender(config, two.get),)
    world.bound(make_pod("low").node("n0").priority(1).req(cpu="2").obj_())
    world.bound(make_pod("mid").node("n1").priority(5).req(cpu="2").obj_())
    hi = make_pod("hi").scheduler(NAME).priority(100).req(cpu="1").obj_()
    attempt = await schedule(world, hi)
    await world.scheduler.drain()
    assert attempt.node == ""
    assert ("preempt", "hi", ("n0", "n1")) in server.calls
    assert attempt.nominated == "n1"
    assert attempt.victims == ("default/mid",)


async def test_https_with_ca_data_and_server_name(tmp_path: Any) -> None:
    """enableHTTPS with caData: the extender's certificate (for "extender.test", served on
    127.0.0.1) verifies only with serverName set; without the CA, verification is off as
    upstream's makeTransport turns it off."""
    from scheduler import tls

    ca = tls.certificate_authority("test-ca")
    serving = tls.serving_certificate(ca, "extender.test", ["extender.test"])
    (tmp_path / "cert.pem").write_bytes(serving.cert_pem())
    (tmp_path / "key.pem").write_bytes(serving.key_pem())
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    ext = TestExtender(allowed=frozenset({"z1"}))
    await ext.start(tls=context)
    ca_data = base64.b64encode(ca.cert_pem()).decode()
    pod_info = compile_pod(make_pod("p").obj_())

    async def passed(**tls_config: Any) -> tuple[str, ...]:
        client = client_for(ext, enableHTTPS=True, tlsConfig=tls_config)
        try:
            return (await client.filter(pod_info, ["n0", "n1"])).nodes
        finally:
            await client.close()

    try:
        assert await passed(caData=ca_data, serverName="extender.test") == ("n1",)
        assert await passed() == ("n1",)  # enableHTTPS without a CA: not verified
        with pytest.raises(ExtenderError, match="certificate"):
            await passed(caData=ca_data)  # the certificate is not for 127.0.0.1
    finally:
        await ext.stop()
