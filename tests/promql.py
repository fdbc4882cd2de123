"""PromQL against one scrape, for tests: which series each vector selector of a query finds.

Queries are parsed with promql-parser (the Rust crate behind GreptimeDB's PromQL, which follows
Prometheus's grammar); series come from a /metrics body parsed with prometheus_client's text
parser, plus the labels Prometheus gives every sample of a target at scrape time (job, instance,
...) and the synthetic `up` series. Only selection is evaluated, not functions or arithmetic:
enough to tell whether a dashboard panel or an alert has data to work on.

Matching follows Prometheus: a missing label has the value "", and regular expressions are
anchored at both ends.
"""

from __future__ import annotations

import re

import promql_parser
from prometheus_client.parser import text_string_to_metric_families

Labels = dict[str, str]
Series = tuple[str, Labels]  # (sample name, labels)


def parse(expr: str) -> promql_parser.Expr:
    """The expression's syntax tree; ValueError (with the parser's message) if it is not
    PromQL."""
    return promql_parser.parse(expr)


def selectors(expr: str) -> list[promql_parser.VectorSelector]:
    """Every vector selector in `expr`, range and subquery selectors' included, in order."""
    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)
        return True

    promql_parser.walk(parse(expr), visit)
    return found


def scrape(body: str, target: Labels) -> list[Series]:
    """The series one scrape of `body` stores: each sample with the target's labels added
    (berth exposes none of them itself, so nothing is renamed to exported_*), and `up` 1."""
    series: list[Series] = [("up", dict(target))]
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            series.append((sample.name, {**sample.labels, **target}))
    return series


def matches(
    selector: promql_parser.VectorSelector, name: str, labels: Labels, ignore: frozenset[str]
) -> bool:
    """Whether `selector`, without its matchers on the `ignore` labels, selects `name{labels}`."""
    if selector.name is not None and selector.name != name:
        return False
    values = {**labels, "__name__": name}
    groups = selector.matchers.or_matchers or [selector.matchers.matchers]
    return any(
        all(_match(m, values.get(m.name, "")) for m in group if m.name not in ignore)
        for group in groups
    )


def found(
    selector: promql_parser.VectorSelector,
    series: list[Series],
    ignore: frozenset[str] = frozenset(),
) -> list[Series]:
    """The series `selector` selects (leaving out its matchers on the `ignore` labels)."""
    return [(name, labels) for name, labels in series if matches(selector, name, labels, ignore)]


def _match(matcher: promql_parser.Matcher, value: str) -> bool:
    op = matcher.op
    if op == promql_parser.MatchOp.Equal:
        return value == matcher.value
    if op == promql_parser.MatchOp.NotEqual:
        return value != matcher.value
    hit = re.fullmatch(matcher.value, value) is not None
    return hit if op == promql_parser.MatchOp.Re else not hit
