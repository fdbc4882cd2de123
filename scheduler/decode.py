"""Strict decoding of configuration documents: one layer for the scheduler configuration and
for every plugin's args.

Upstream decodes a KubeSchedulerConfiguration, plugin args included, with a strict codec
(unknown fields are errors, every value must fit its Go type), defaults it, then validates it
with `field.ErrorList`s. berth does the three steps in Python with this module's `Section`: a
view of one mapping that knows its field path, refuses keys it was not told about, and has one
typed getter per Go type (`int32`/`int64` are YAML integers in range, never bools or floats;
strings are strings; lists are lists; `metav1.Duration` is a Go duration string). A getter
records an error and returns None for a bad value, so decoding goes on and every problem of a
document is reported at once, each as `field.path: message`.

Validators word their messages as apimachinery's `field.Error` does (`invalid`, `required`,
`not_supported`, `duplicate`, `forbidden` below), so a message reads like kube-scheduler's:
`profiles[0].pluginConfig[2].args.scoringStrategy.type: Unsupported value: "abc": supported
values: "LeastAllocated", "MostAllocated", "RequestedToCapacityRatio"`.

This module imports nothing of berth: the configuration (scheduler/config.py) and the plugin
args types (scheduler/pluginargs.py) both build on it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

_T = TypeVar("_T")

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
NS_PER_S = 1_000_000_000


class ConfigError(ValueError):
    """An invalid scheduler configuration (or plugin args).

    `errors` holds every problem found, each `field.path: message` naming the bad value, e.g.
    `profiles[0].plugins.score.enabled[1].name: unknown plugin "Foo"`. str() joins them with
    newlines.
    """

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


_PLAIN_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


class Section:
    """One mapping of the document with typed getters that record errors instead of raising.

    A getter returns None when the field is absent, null or of the wrong type (the last also
    records an error), so callers apply the default with `default()`.
    """

    def __init__(
        self,
        raw: Any,
        path: str,
        fields: Collection[str],
        errs: list[str],
        *,
        root: str = "",
    ) -> None:
        """`root` names the document in errors about the top-level mapping itself (its
        `path` is "")."""
        self.path = path
        self.errs = errs
        self.raw: Mapping[Any, Any] = {}
        if isinstance(raw, Mapping):
            self.raw = raw
        elif raw is not None:
            self.error(path or root, f"must be a mapping (got {show(raw)})")
        for key in self.raw:
            if key not in fields:
                # A key that is not a plain name ("", "a: b", 1) would garble the path:
                # report it on the mapping that holds it.
                plain = isinstance(key, str) and _PLAIN_KEY.fullmatch(key)
                self.error(self.at(key) if plain else path or root, f"unknown field {q(key)}")

    def at(self, key: Any) -> str:
        return f"{self.path}.{key}" if self.path else str(key)

    def error(self, path: str, message: str) -> None:
        self.errs.append(f"{path}: {message}")

    def get(self, key: str) -> Any:
        return self.raw.get(key)

    def section(self, key: str, fields: Collection[str]) -> Section:
        return Section(self.get(key), self.at(key), fields, self.errs)

    def section_at(self, raw: Any, path: str, fields: Collection[str]) -> Section:
        """A nested mapping that is not under a plain key, e.g. a list item."""
        return Section(raw, path, fields, self.errs)

    def sections(self, key: str, fields: Collection[str]) -> list[Section]:
        """A list of objects (`[]T` of a struct type): one Section per item, `key[i]`."""
        return [
            self.section_at(item, f"{self.at(key)}[{i}]", fields)
            for i, item in enumerate(self.get_list(key))
        ]

    def get_int(self, key: str, bounds: tuple[int, int] = INT32) -> int | None:
        value = self.get(key)
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            # Upstream reads YAML through JSON, where 2.0 is the number 2: an int field takes
            # it. 2.5 it refuses, and so does berth.
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(self.at(key), f"must be an integer (got {show(value)})")
            return None
        if not bounds[0] <= value <= bounds[1]:
            self.error(self.at(key), f"must be in [{bounds[0]}, {bounds[1]}] (got {value})")
            return None
        return value

    def get_number(self, key: str) -> float | None:
        value = self.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(self.at(key), f"must be a number (got {show(value)})")
            return None
        if not math.isfinite(value):  # JSON has no NaN or Inf: upstream cannot decode it
            self.error(self.at(key), f"must be a finite number (got {value})")
            return None
        return float(value)

    def get_bool(self, key: str) -> bool | None:
        value = self.get(key)
        if value is None or isinstance(value, bool):
            return value
        self.error(self.at(key), f"must be true or false (got {show(value)})")
        return None

    def get_str(self, key: str) -> str | None:
        value = self.get(key)
        if value is None or isinstance(value, str):
            return value
        self.error(self.at(key), f"must be a string (got {show(value)})")
        return None

    def get_list(self, key: str) -> list[Any]:
        value = self.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(self.at(key), f"must be a list (got {show(value)})")
            return []
        return value

    def get_str_list(self, key: str) -> list[str] | None:
        """A `[]string`: None when absent or null; a bad item is reported at `key[i]` and
        left out."""
        if self.get(key) is None:
            return None
        out = []
        for i, item in enumerate(self.get_list(key)):
            if isinstance(item, str):
                out.append(item)
            else:
                self.error(f"{self.at(key)}[{i}]", f"must be a string (got {show(item)})")
        return out

    def get_duration_ns(self, key: str) -> int | None:
        """A metav1.Duration: a Go duration string ("15s", "1m30s", "500ms"), in nanoseconds."""
        text = self.get_str(key)
        if text is None:
            return None
        ns = parse_go_duration(text)
        if ns is None:
            self.error(self.at(key), f'must be a duration such as "15s" (got {q(text)})')
        return ns


def default(value: _T | None, fallback: _T) -> _T:
    return fallback if value is None else value


def show(value: Any) -> str:
    """A bad value as it would appear in YAML/JSON, for error messages."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def q(text: Any) -> str:
    return json.dumps(str(text), ensure_ascii=False)


# --- apimachinery's field.Error wording ----------------------------------------------------


def go_value(value: Any) -> str:
    """A bad value as field.Error prints it: numbers and bools bare, strings quoted, anything
    else as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return q(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def invalid(path: str, value: Any, detail: str) -> str:
    """field.Invalid."""
    return f"{path}: Invalid value: {go_value(value)}: {detail}"


def required(path: str, detail: str) -> str:
    """field.Required."""
    return f"{path}: Required value: {detail}"


def forbidden(path: str, detail: str) -> str:
    """field.Forbidden."""
    return f"{path}: Forbidden: {detail}"


def not_supported(path: str, value: Any, supported: Iterable[str]) -> str:
    """field.NotSupported (the supported values in the order given)."""
    return f"{path}: Unsupported value: {go_value(value)}: supported values: " + ", ".join(
        q(s) for s in supported
    )


def duplicate(path: str, value: Any) -> str:
    """field.Duplicate."""
    return f"{path}: Duplicate value: {go_value(value)}"


# --- Go durations -------------------------------------------------------------------------

_DURATION_TERM = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": NS_PER_S,
    "m": 60 * NS_PER_S,
    "h": 3600 * NS_PER_S,
}


def parse_go_duration(text: str) -> int | None:
    """Go's time.ParseDuration, to integer nanoseconds; None if malformed or out of range."""
    sign = -1 if text.startswith("-") else 1
    body = text[1:] if text.startswith(("-", "+")) else text
    if body == "0":
        return 0
    if not body:
        return None
    total, pos = 0, 0
    while pos < len(body):
        match = _DURATION_TERM.match(body, pos)
        if match is None:
            return None
        try:
            total += int(Decimal(match[1]) * _UNIT_NS[match[2]])
        except InvalidOperation:
            return None
        pos = match.end()
    ns = sign * total
    return ns if INT64[0] <= ns <= INT64[1] else None


def fmt_ns(ns: int) -> str:
    return f"{ns / NS_PER_S:g}s"
