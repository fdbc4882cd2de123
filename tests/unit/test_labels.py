"""scheduler.labels: label / DNS-1123 validation with apimachinery's cases and messages, and
label selector semantics (pkg/labels, metav1.LabelSelectorAsSelector).

The valid and invalid values are upstream's own lists (pkg/util/validation/validation_test.go
and pkg/api/validate/content/{kube,dns}_test.go at v0.37.2); the messages are written out here
in full, as upstream's functions return them, so a change of wording fails a test.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from scheduler.labels import (
    LabelSelector,
    Requirement,
    SelectorError,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_label_value,
    parse_label_selector,
    requirement_matches,
)

# The rule halves of upstream's RegexError messages, spelt out (note the doubled spaces
# before "or", which RegexError writes).
KEY_RULE = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
DNS_LABEL_RULE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
SUBDOMAIN_RULE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)

Validator = Callable[[str], list[str]]

# --- validation: upstream's lists ------------------------------------------------------------

QUALIFIED_NAME_OK = [
    "simple",
    "now-with-dashes",
    "1-starts-with-num",
    "1234",
    "simple/simple",
    "now-with-dashes/simple",
    "now-with-dashes/now-with-dashes",
    "now.with.dots/simple",
    "now-with.dashes-and.dots/simple",
    "1-num.2-num/3-num",
    "1234/5678",
    "1.2.3.4/5678",
    "Uppercase_Is_OK_123",
    "example.com/Uppercase_Is_OK_123",
    "requests.storage-foo",
    "a" * 63,
    "a" * 253 + "/" + "b" * 63,
]
LABEL_VALUE_OK = ["simple", "now-with-dashes", "1-starts-with-num", "end-with-num-1", "1234"]
LABEL_VALUE_OK += ["a" * 63, ""]
DNS_LABEL_OK = ["a", "ab", "abc", "a1", "a-1", "a--1--2--b", "0", "01", "012", "1a", "1-a"]
DNS_LABEL_OK += ["1--a--b--2", "a" * 63]
SUBDOMAIN_OK = [
    *DNS_LABEL_OK[:-1],
    *("a.a", "ab.a", "abc.a", "a1.a", "a-1.a", "a--1--2--b.a"),
    *("a.1", "ab.1", "abc.1", "a1.1", "a-1.1", "a--1--2--b.1"),
    *("0.a", "01.a", "012.a", "1a.a", "1-a.a", "1--a--b--2"),
    *("0.1", "01.1", "012.1", "1a.1", "1-a.1", "1--a--b--2.1"),
    *("a.b.c.d.e", "aa.bb.cc.dd.ee", "1.2.3.4.5", "11.22.33.44.55"),
    "a" * 253,
]

# Bad values whose only problem is the character rule.
DNS_LABEL_BAD = ["", "A", "ABC", "aBc", "A1", "A-1", "1-A", "-", "a-", "-a", "1-", "-1"]
DNS_LABEL_BAD += ["_", "a_", "_a", "a_b", "1_", "_1", "1_2", ".", "a.", ".a", "1.", ".1"]
DNS_LABEL_BAD += [" ", "a ", " a", "a b", "1 ", " 1", "1 2"]
SUBDOMAIN_BAD = [
    *DNS_LABEL_BAD,
    *("a..b", "1..2"),
    *("A.a", "aB.a", "ab.A", "A1.a", "a1.A", "A.1", "aB.1", "A1.1", "1A.1"),
    *("0.A", "01.A", "012.A", "1A.a", "1a.A"),
    *("A.B.C.D.E", "AA.BB.CC.DD.EE", "a.B.c.d.e", "aa.bB.cc.dd.ee"),
    *("a@b", "a,b", "a_b", "a;b", "a:b", "a%b", "a?b", "a$b"),
]


def cases(fn: Validator, values: list[str], expected: list[str]) -> list[Any]:
    name = fn.__name__.removeprefix("is_").replace("_", "-")
    return [pytest.param(fn, v, expected, id=f"{name}/{v[:24]!r}") for v in values]


@pytest.mark.parametrize(
    ("fn", "value", "expected"),
    [
        *cases(is_qualified_name, QUALIFIED_NAME_OK, []),
        *cases(is_valid_label_value, LABEL_VALUE_OK, []),
        *cases(is_dns1123_label, DNS_LABEL_OK, []),
        *cases(is_dns1123_subdomain, SUBDOMAIN_OK, []),
        # IsQualifiedName's error cases
        *cases(
            is_qualified_name,
            ["nospecialchars%^=@", "cantendwithadash-", "-cantstartwithadash-"],
            ["name part " + KEY_RULE],
        ),
        *cases(
            is_qualified_name,
            ["only/one/slash"],
            [
                "a valid label key "
                + KEY_RULE
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ],
        ),
        *cases(
            is_qualified_name,
            ["Example.com/abc", "example_com/abc"],
            ["prefix part " + SUBDOMAIN_RULE],
        ),
        *cases(
            is_qualified_name,
            ["example.com/"],
            ["name part must be non-empty", "name part " + KEY_RULE],
        ),
        *cases(is_qualified_name, ["/simple"], ["prefix part must be non-empty"]),
        *cases(is_qualified_name, ["a" * 64], ["name part must be no more than 63 bytes"]),
        *cases(
            is_qualified_name, ["a" * 254 + "/abc"], ["prefix part must be no more than 253 bytes"]
        ),
        # Go measures bytes: 32 two-byte letters are too long for a name part.
        *cases(
            is_qualified_name,
            ["ā" * 32],
            ["name part must be no more than 63 bytes", "name part " + KEY_RULE],
        ),
        # IsValidLabelValue's error cases
        *cases(
            is_valid_label_value,
            [
                "nospecialchars%^=@",
                "Tama-nui-te-rā.is.Māori.sun",
                "\\backslashes\\are\\bad",
                "-starts-with-dash",
                "ends-with-dash-",
                ".starts.with.dot",
                "ends.with.dot.",
                "trailing-newline\n",
            ],
            [VALUE_RULE],
        ),
        *cases(is_valid_label_value, ["a" * 64], ["must be no more than 63 bytes"]),
        # IsDNS1123Label / IsDNS1123Subdomain's error cases (util/validation says "characters")
        *cases(is_dns1123_label, DNS_LABEL_BAD, [DNS_LABEL_RULE]),
        *cases(is_dns1123_label, ["a.b", "1.2"], ["must not contain dots"]),
        *cases(is_dns1123_label, ["a" * 64], ["must be no more than 63 characters"]),
        *cases(
            is_dns1123_label,
            ["A" * 64],
            ["must be no more than 63 characters", DNS_LABEL_RULE],
        ),
        *cases(is_dns1123_subdomain, SUBDOMAIN_BAD, [SUBDOMAIN_RULE]),
        *cases(is_dns1123_subdomain, ["a" * 254], ["must be no more than 253 characters"]),
    ],
)
def test_validation(fn: Validator, value: str, expected: list[str]) -> None:
    """Upstream's valid values pass; each invalid one gets upstream's messages, in order."""
    assert fn(value) == expected


# --- requirements ----------------------------------------------------------------------------


def req(op: str, *values: str) -> Requirement:
    return Requirement("key", op, values)


@pytest.mark.parametrize(
    ("requirement", "value", "expected"),
    [
        pytest.param(req("In", "a", "b"), "a", True, id="in-listed"),
        pytest.param(req("In", "a", "b"), "c", False, id="in-not-listed"),
        pytest.param(req("In", "a"), None, False, id="in-label-absent"),
        pytest.param(req("In", ""), "", True, id="in-empty-value"),
        pytest.param(req("NotIn", "a", "b"), "a", False, id="notin-listed"),
        pytest.param(req("NotIn", "a", "b"), "c", True, id="notin-not-listed"),
        pytest.param(req("NotIn", "a"), None, True, id="notin-label-absent"),
        pytest.param(req("Exists"), "x", True, id="exists-present"),
        pytest.param(req("Exists"), "", True, id="exists-present-empty"),
        pytest.param(req("Exists"), None, False, id="exists-absent"),
        pytest.param(req("DoesNotExist"), "x", False, id="doesnotexist-present"),
        pytest.param(req("DoesNotExist"), "", False, id="doesnotexist-present-empty"),
        pytest.param(req("DoesNotExist"), None, True, id="doesnotexist-absent"),
        pytest.param(req("Gt", "3"), "5", True, id="gt-greater"),
        pytest.param(req("Gt", "3"), "3", False, id="gt-equal"),
        pytest.param(req("Gt", "3"), "2", False, id="gt-smaller"),
        pytest.param(req("Gt", "-2"), "-1", True, id="gt-negative"),
        pytest.param(req("Gt", "6"), "+7", True, id="gt-explicit-plus"),
        pytest.param(req("Gt", "3"), None, False, id="gt-label-absent"),
        pytest.param(req("Gt", "3"), "abc", False, id="gt-label-not-a-number"),
        pytest.param(req("Gt", "x"), "5", False, id="gt-value-not-a-number"),
        pytest.param(req("Gt", "1.5"), "5", False, id="gt-value-decimal"),
        pytest.param(req("Gt", "3", "4"), "5", False, id="gt-two-values"),
        pytest.param(req("Gt"), "5", False, id="gt-no-value"),
        pytest.param(req("Gt", "999"), "1_000", False, id="gt-underscore-is-not-a-number"),
        pytest.param(req("Gt", "3"), " 7", False, id="gt-space-is-not-a-number"),
        pytest.param(req("Gt", "3"), "7\n", False, id="gt-newline-is-not-a-number"),
        pytest.param(req("Gt", "0"), str(2**63), False, id="gt-beyond-int64"),
        pytest.param(req("Gt", "0"), str(2**63 - 1), True, id="gt-int64-max"),
        pytest.param(req("Lt", "3"), "2", True, id="lt-smaller"),
        pytest.param(req("Lt", "3"), "3", False, id="lt-equal"),
        pytest.param(req("Lt", "3"), "4", False, id="lt-greater"),
        pytest.param(req("Lt", "0"), "-1", True, id="lt-negative"),
        pytest.param(req("Lt", "3"), None, False, id="lt-label-absent"),
        pytest.param(req("Lt", "3"), "two", False, id="lt-label-not-a-number"),
        pytest.param(req("Lt", "three"), "2", False, id="lt-value-not-a-number"),
        pytest.param(req("Equals", "5"), "5", False, id="unknown-operator-matches-nothing"),
        pytest.param(req("Equals", "5"), "4", False, id="unknown-operator-is-not-lt"),
    ],
)
def test_requirement_matches(requirement: Requirement, value: str | None, expected: bool) -> None:
    """Every operator, with labels.Requirement's rules for Gt/Lt (base-10 int64 or no match)."""
    assert requirement_matches(requirement, value) is expected
    labels = {} if value is None else {"key": value}
    assert requirement.matches(labels) is expected


# --- selectors -------------------------------------------------------------------------------


def expr(key: str, op: str, *values: str) -> dict[str, Any]:
    return {"matchExpressions": [{"key": key, "operator": op, "values": list(values)}]}


@pytest.mark.parametrize(
    ("raw", "labels", "expected"),
    [
        pytest.param(None, {}, False, id="nil-matches-nothing"),
        pytest.param(None, {"a": "1"}, False, id="nil-matches-nothing-labelled"),
        pytest.param({}, {}, True, id="empty-matches-everything"),
        pytest.param({}, {"a": "1"}, True, id="empty-matches-everything-labelled"),
        pytest.param(
            {"matchLabels": {}, "matchExpressions": []}, {"a": "1"}, True, id="empty-lists"
        ),
        pytest.param({"matchLabels": None}, {"a": "1"}, True, id="null-fields-are-empty"),
        pytest.param({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True, id="labels-match"),
        pytest.param({"matchLabels": {"a": "1"}}, {"a": "2"}, False, id="labels-other-value"),
        pytest.param({"matchLabels": {"a": "1"}}, {}, False, id="labels-absent"),
        pytest.param({"matchLabels": {"a": ""}}, {"a": ""}, True, id="labels-empty-value"),
        pytest.param({"matchLabels": {"a": ""}}, {}, False, id="labels-empty-value-absent"),
        pytest.param(
            {"matchLabels": {"a": "1", "b": "2"}}, {"a": "1"}, False, id="labels-all-must-hold"
        ),
        pytest.param(expr("a", "In", "1", "2"), {"a": "2"}, True, id="in"),
        pytest.param(expr("a", "In", "1", "2"), {"a": "3"}, False, id="in-other-value"),
        pytest.param(expr("a", "In", "1"), {}, False, id="in-absent"),
        pytest.param(expr("a", "NotIn", "1"), {"a": "1"}, False, id="notin"),
        pytest.param(expr("a", "NotIn", "1"), {"a": "2"}, True, id="notin-other-value"),
        pytest.param(expr("a", "NotIn", "1"), {}, True, id="notin-absent"),
        pytest.param(expr("a", "Exists"), {"a": ""}, True, id="exists"),
        pytest.param(expr("a", "Exists"), {"b": "1"}, False, id="exists-absent"),
        pytest.param(expr("a", "DoesNotExist"), {"a": ""}, False, id="does-not-exist-present"),
        pytest.param(expr("a", "DoesNotExist"), {"b": "1"}, True, id="does-not-exist"),
        pytest.param(
            {"matchLabels": {"a": "1"}, **expr("b", "NotIn", "x")},
            {"a": "1", "b": "x"},
            False,
            id="labels-and-expressions-all-hold",
        ),
        pytest.param(
            {"matchLabels": {"a": "1"}, **expr("a", "NotIn", "1")},
            {"a": "1"},
            False,
            id="contradiction-matches-nothing",
        ),
    ],
)
def test_selector_matches(raw: Any, labels: dict[str, str], expected: bool) -> None:
    """LabelSelectorAsSelector(raw).Matches(labels): nil is Nothing, empty is Everything."""
    assert parse_label_selector(raw, "selector").matches(labels) is expected


def test_selector_compiles_to_requirements() -> None:
    """matchLabels become In requirements, sorted by key, before matchExpressions in order."""
    raw = {
        "matchLabels": {"b": "2", "a": "1"},
        "matchExpressions": [
            {"key": "z", "operator": "Exists"},
            {"key": "c", "operator": "NotIn", "values": ["x", "y"]},
        ],
    }
    assert parse_label_selector(raw, "s") == LabelSelector(
        (
            Requirement("a", "In", ("1",)),
            Requirement("b", "In", ("2",)),
            Requirement("z", "Exists"),
            Requirement("c", "NotIn", ("x", "y")),
        )
    )
    assert parse_label_selector(None, "s") == LabelSelector(nothing=True)


@pytest.mark.parametrize(
    ("raw", "errors"),
    [
        pytest.param(["a"], ["s: must be a LabelSelector mapping (got ['a'])"], id="not-a-mapping"),
        pytest.param(
            {"matchLabels": {"gpu": True}},
            ["s.matchLabels: must map label keys to string values, quote them (got {'gpu': True})"],
            id="label-value-not-a-string",
        ),
        pytest.param(
            {"matchLabels": {"-a": "b c"}},
            [
                f's.matchLabels[-a]: invalid label key "-a": name part {KEY_RULE}',
                f's.matchLabels[-a]: invalid label value "b c": {VALUE_RULE}',
            ],
            id="label-key-and-value-invalid",
        ),
        pytest.param(
            {"matchExpressions": {"key": "a"}},
            ["s.matchExpressions: must be a list (got {'key': 'a'})"],
            id="expressions-not-a-list",
        ),
        pytest.param(
            {"matchExpressions": ["a"]},
            ["s.matchExpressions[0]: must be a mapping (got 'a')"],
            id="expression-not-a-mapping",
        ),
        pytest.param(
            {"matchExpressions": [{"operator": "Exists"}]},
            ["s.matchExpressions[0].key: required, a label key (got None)"],
            id="key-missing",
        ),
        pytest.param(
            expr("a/b/c", "Exists"),
            [
                's.matchExpressions[0].key: invalid label key "a/b/c": a valid label key '
                + KEY_RULE
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ],
            id="key-invalid",
        ),
        pytest.param(
            expr("a", "Equals", "1"),
            [
                "s.matchExpressions[0].operator: must be one of In, NotIn, Exists, DoesNotExist "
                "(got 'Equals')"
            ],
            id="operator-not-a-selector-operator",
        ),
        pytest.param(
            expr("a", "Gt", "1"),
            [
                "s.matchExpressions[0].operator: must be one of In, NotIn, Exists, DoesNotExist "
                "(got 'Gt')"
            ],
            id="gt-is-for-node-selectors-only",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "In", "values": [1]}]},
            ["s.matchExpressions[0].values: must be a list of strings (got [1])"],
            id="values-not-strings",
        ),
        pytest.param(
            expr("a", "In"),
            ["s.matchExpressions[0].values: must be non-empty for operator In"],
            id="in-without-values",
        ),
        pytest.param(
            expr("a", "NotIn"),
            ["s.matchExpressions[0].values: must be non-empty for operator NotIn"],
            id="notin-without-values",
        ),
        pytest.param(
            expr("a", "Exists", "1"),
            ["s.matchExpressions[0].values: must be empty for operator Exists"],
            id="exists-with-values",
        ),
        pytest.param(
            expr("a", "DoesNotExist", "1"),
            ["s.matchExpressions[0].values: must be empty for operator DoesNotExist"],
            id="does-not-exist-with-values",
        ),
        pytest.param(
            expr("a", "In", "ok", "v" * 64),
            [
                's.matchExpressions[0].values[1]: invalid label value "' + "v" * 64 + '": '
                "must be no more than 63 bytes"
            ],
            id="value-too-long",
        ),
        pytest.param(
            {
                "matchLabels": {"ok": "-x"},
                "matchExpressions": [
                    {"key": "a", "operator": "In"},
                    {"key": "_b", "operator": "Exists"},
                ],
            },
            [
                f's.matchLabels[ok]: invalid label value "-x": {VALUE_RULE}',
                "s.matchExpressions[0].values: must be non-empty for operator In",
                f's.matchExpressions[1].key: invalid label key "_b": name part {KEY_RULE}',
            ],
            id="every-error-reported",
        ),
    ],
)
def test_selector_errors(raw: Any, errors: list[str]) -> None:
    """A selector LabelSelectorAsSelector refuses is a SelectorError listing every problem
    with its field path."""
    with pytest.raises(SelectorError) as caught:
        parse_label_selector(raw, "s")
    assert caught.value.errors == errors
    assert str(caught.value) == "; ".join(errors)


def test_unknown_fields_only_when_strict() -> None:
    """Strict decoding (files people write) refuses unknown fields; API objects keep going."""
    raw = {
        "matchLabel": {"a": "1"},
        "matchExpressions": [{"key": "a", "operator": "Exists", "value": 1}],
    }
    assert parse_label_selector(raw, "s") == LabelSelector((Requirement("a", "Exists"),))
    with pytest.raises(SelectorError) as caught:
        parse_label_selector(raw, "s", strict=True)
    assert caught.value.errors == [
        "s.matchLabel: unknown field",
        "s.matchExpressions[0].value: unknown field",
    ]


def test_labels_is_the_bottom_layer() -> None:
    """scheduler/labels.py imports nothing of berth's (DESIGN.md: model → labels)."""
    source = Path(__file__).resolve().parents[2] / "scheduler" / "labels.py"
    tree = ast.parse(source.read_text())
    imported = [
        alias.name for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names
    ]
    imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    ours = [name for name in imported if name.split(".")[0] in ("scheduler", "plugins", "tests")]
    assert ours == []
