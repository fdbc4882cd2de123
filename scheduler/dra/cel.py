"""CEL device selectors (DeviceClass and request `selectors[].cel.expression`), evaluated with
the CEL project's own runtime for Python (`cel-expr-python`, the C++ implementation's wrapper).

Mirrors k8s.io/dynamic-resource-allocation/cel (compile.go) where users can see it:

- the one variable is `device`: `driver` (string), `allowMultipleAllocations` (bool),
  `attributes` and `capacity`, each a map of domain -> map of name -> value. An attribute named
  without a domain belongs to the driver's domain. Looking up a domain the device does not have
  gives an empty map (upstream's mapper with a default); a missing name is a runtime error
  ("no such key"), as upstream.
- the extensions upstream's environment has that DRA selectors use: `cel.bind` (bindings), the
  strings library, and Kubernetes' quantity and semver libraries (`quantity("80Gi")`,
  `.compareTo`, `.isGreaterThan`, `.isLessThan`, `.add`, `.sub`, `.sign`, `.isInteger`,
  `.asInteger`, `.asApproximateFloat`, `isQuantity`; `semver("1.2.3")`, `.major`, `.minor`,
  `.patch`, `isSemver`).

The Python wrapper cannot carry opaque values, so a quantity is passed as the one-entry map
{QUANTITY: "<decimal>"} and a version as {SEMVER: "<text>"}; the library functions check which
they were given. An expression must be of type bool (else a compile error, as upstream's
output-type check).

Each expression is compiled once (`compile_selector`, cached). `Selector.matches(device)` raises
CelRuntimeError on an evaluation error; the allocator turns that into upstream's
"... CEL runtime error: ..." failure.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext import ext_bindings, ext_strings

from scheduler.model import InvalidObject, parse_quantity_decimal

NO_SUCH_KEY_HINT = (
    "consider using CEL optional chaining (.? followed by orValue()) or guarding the check"
    " with has() for optional fields"
)
QUANTITY = "kubernetes.Quantity"  # the key of the map that stands for a quantity
SEMVER = "kubernetes.Semver"  # likewise for a semantic version

_T = cel.Type
# A domain looked up by a literal key: device.attributes["d"] or device.capacity['d'].
_DOMAIN_LOOKUP = re.compile(
    r'(?:attributes|capacity)\s*\[\s*(?:"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\')\s*\]'
)
_SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)


class CelRuntimeError(RuntimeError):
    """Evaluating a selector failed (a missing attribute, a bad quantity, a non-bool result)."""


@dataclass(frozen=True, slots=True)
class Selector:
    """One compiled expression. `error` is set (and `program` None) when it did not compile."""

    expression: str
    program: Any = None
    error: str = ""
    # The domains the expression looks up by a literal key, which an activation gets as empty
    # maps when the device has none (upstream's default for an unknown domain; `in` still
    # sees only the device's own domains).
    literals: frozenset[str] = field(default_factory=frozenset)

    def matches(self, data: Mapping[str, Any]) -> bool:
        """Evaluate on a device's activation data (`device_data`). Raises CelRuntimeError."""
        device = data["device"]
        missing = [
            d for d in self.literals if d not in device["attributes"] or d not in device["capacity"]
        ]
        if missing:
            attributes, capacity = dict(device["attributes"]), dict(device["capacity"])
            for domain in missing:
                attributes.setdefault(domain, {})
                capacity.setdefault(domain, {})
            data = {"device": {**device, "attributes": attributes, "capacity": capacity}}
        result = self.program.eval(data=data)
        kind = result.type()
        if kind == _T.ERROR:
            raise CelRuntimeError(_runtime_message(str(result.value())))
        if kind != _T.BOOL:
            name = kind.name().lower()
            raise CelRuntimeError(
                f"CEL result of type {name} could not be converted to bool:"
                f" unsupported native conversion from {name} to 'bool'"
            )
        return bool(result.value())


def device_data(
    driver: str,
    attributes: Mapping[str, Any],
    capacity: Mapping[str, str],
    allow_multiple: bool = False,
) -> dict[str, Any]:
    """The activation for one device. `attributes` maps a (possibly qualified) name to its
    typed value as the API has it ({"string": "a100"}, {"int": 3}, {"bool": true},
    {"version": "1.0.0"}); `capacity` maps a name to its quantity text. Raises InvalidObject
    for a quantity or a version that does not parse."""
    attrs: dict[str, dict[str, Any]] = {}
    for name, value in attributes.items():
        domain, ident = split_name(name, driver)
        try:
            attrs.setdefault(domain, {})[ident] = _attribute_value(value)
        except ValueError as err:
            raise InvalidObject(f"attribute {name}: {err}") from err
    caps: dict[str, dict[str, Any]] = {}
    for name, text in capacity.items():
        domain, ident = split_name(name, driver)
        caps.setdefault(domain, {})[ident] = {QUANTITY: _canonical(parse_quantity_decimal(text))}
    return {
        "device": {
            "driver": driver,
            "allowMultipleAllocations": allow_multiple,
            "attributes": attrs,
            "capacity": caps,
        }
    }


def split_name(name: str, default_domain: str) -> tuple[str, str]:
    """upstream's parseQualifiedName: "domain/id", or ("driver domain", id)."""
    domain, sep, ident = name.partition("/")
    return (domain, ident) if sep else (default_domain, name)


@functools.lru_cache(maxsize=4096)
def compile_selector(expression: str) -> Selector:
    """Compile once; a failure is kept in `error` with upstream's "compilation failed: ..."."""
    literals = frozenset(a or b for a, b in _DOMAIN_LOOKUP.findall(expression))
    try:
        program = _env().compile(expression)
    except RuntimeError as err:
        if "cannot be the range of a comprehension" not in str(err):
            return Selector(expression, error=f"compilation failed: {_compile_message(err)}")
        # The checker knows `device` only as a map of dyn, which it will not iterate
        # (`device.attributes["d"].exists(...)`); upstream's typed environment would. The API
        # server has type-checked the expression already: check its result at run time.
        try:
            program = _env().compile(expression, disable_check=True)
        except RuntimeError:
            return Selector(expression, error=f"compilation failed: {_compile_message(err)}")
    kind = program.return_type()
    if kind not in (_T.BOOL, _T.DYN):
        return Selector(
            expression,
            error=f"must evaluate to bool or the unknown type, not {kind.name().lower()}",
        )
    return Selector(expression, program, literals=literals)


def _attribute_value(value: Any) -> Any:
    if not isinstance(value, Mapping):
        return value
    if "string" in value:
        return str(value["string"])
    if "bool" in value:
        return bool(value["bool"])
    if "int" in value:
        return int(value["int"])
    if "version" in value:
        return _semver(str(value["version"]))
    return None


def _compile_message(err: Exception) -> str:
    text = str(err)
    return text.removeprefix("INVALID_ARGUMENT: ").split(" [INVALID_ARGUMENT]")[0].strip()


def _runtime_message(text: str) -> str:
    # "NOT_FOUND: Key not found in map : "nokey"" -> upstream's "no such key: nokey"
    match = re.fullmatch(r'NOT_FOUND: Key not found in map : "(.*)"', text)
    if match:
        # upstream's EnhanceRuntimeError adds the hint to every "no such key" error
        return f"no such key: {match.group(1)}. {NO_SUCH_KEY_HINT}"
    return re.sub(r"^[A-Z_]+: ", "", text)


# --- Kubernetes' quantity and semver libraries -------------------------------------------


def _q(value: Any) -> Decimal:
    if isinstance(value, Mapping) and QUANTITY in value:
        return Decimal(value[QUANTITY])
    raise ValueError("no such overload: not a quantity")


def _v(value: Any) -> tuple[int, int, int, str]:
    if isinstance(value, Mapping) and SEMVER in value:
        return _parse_semver(value[SEMVER])
    raise ValueError("no such overload: not a semver")


def _canonical(value: Decimal) -> str:
    """One text per value ("2" for 2.000 and 2000m), so that `==` on two quantities (maps)
    compares values, as upstream's Quantity.Equal."""
    value = value.normalize()
    return format(value if value else Decimal(0), "f")


def _quantity(text: str) -> dict[str, str]:
    try:
        return {QUANTITY: _canonical(parse_quantity_decimal(text))}
    except InvalidObject as err:
        raise ValueError(str(err)) from err


def _is_quantity(text: str) -> bool:
    try:
        parse_quantity_decimal(text)
    except InvalidObject:
        return False
    return True


def _parse_semver(text: str) -> tuple[int, int, int, str]:
    match = _SEMVER.fullmatch(text)
    if not match:
        raise ValueError(f"invalid semver {text!r}")
    major, minor, patch, pre = match.groups()
    return int(major), int(minor), int(patch), pre or ""


def _semver(text: str) -> dict[str, str]:
    _parse_semver(text)
    # Without build metadata, which versions do not compare by (so `==` is upstream's EQ).
    return {SEMVER: text.partition("+")[0]}


def _is_semver(text: str) -> bool:
    return _SEMVER.fullmatch(text) is not None


def _semver_key(v: tuple[int, int, int, str]) -> tuple[int, int, int, int, tuple[Any, ...]]:
    major, minor, patch, pre = v
    # A pre-release sorts before its release; its dot parts compare numerically if numeric.
    parts = (
        tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")) if pre else ()
    )
    return major, minor, patch, 0 if pre else 1, parts


def _compare(a: Any, b: Any) -> int:
    x: Any
    y: Any
    if isinstance(a, Mapping) and SEMVER in a:
        x, y = _semver_key(_v(a)), _semver_key(_v(b))
    else:
        x, y = _q(a), _q(b)
    return int(x > y) - int(x < y)


def _plus(a: Any, b: Any, sign: int) -> dict[str, str]:
    other = Decimal(b) if isinstance(b, int) else _q(b)
    return {QUANTITY: _canonical(_q(a) + sign * other)}


def _is_integer(a: Any) -> bool:
    """upstream's isInteger: the value converts to an int64 exactly."""
    value = _q(a)
    return value == value.to_integral_value() and -(2**63) <= value <= 2**63 - 1


def _as_integer(a: Any) -> int:
    if not _is_integer(a):
        raise ValueError("cannot convert value to integer")
    return int(_q(a))


def _overload(name: str, ret: Any, params: list[Any], impl: Any, member: bool = True) -> Any:
    return cel.FunctionDecl(
        name,
        [
            cel.Overload(
                f"{name}_{len(params)}_{id(impl)}", ret, params, is_member=member, impl=impl
            )
        ],
    )


@functools.cache
def _env() -> Any:
    m, i = _T.MAP, _T.INT
    functions = [
        _overload("quantity", m, [_T.STRING], _quantity, member=False),
        _overload("isQuantity", _T.BOOL, [_T.STRING], _is_quantity, member=False),
        _overload("semver", m, [_T.STRING], _semver, member=False),
        _overload("isSemver", _T.BOOL, [_T.STRING], _is_semver, member=False),
        _overload("compareTo", i, [m, m], _compare),
        _overload("isGreaterThan", _T.BOOL, [m, m], lambda a, b: _compare(a, b) > 0),
        _overload("isLessThan", _T.BOOL, [m, m], lambda a, b: _compare(a, b) < 0),
        cel.FunctionDecl(
            "add",
            [
                cel.Overload(
                    "quantity_add", m, [m, m], is_member=True, impl=lambda a, b: _plus(a, b, 1)
                ),
                cel.Overload(
                    "quantity_add_int", m, [m, i], is_member=True, impl=lambda a, b: _plus(a, b, 1)
                ),
            ],
        ),
        cel.FunctionDecl(
            "sub",
            [
                cel.Overload(
                    "quantity_sub", m, [m, m], is_member=True, impl=lambda a, b: _plus(a, b, -1)
                ),
                cel.Overload(
                    "quantity_sub_int", m, [m, i], is_member=True, impl=lambda a, b: _plus(a, b, -1)
                ),
            ],
        ),
        _overload("sign", i, [m], lambda a: (_q(a) > 0) - (_q(a) < 0)),
        _overload("isInteger", _T.BOOL, [m], _is_integer),
        _overload("asInteger", i, [m], _as_integer),
        _overload("asApproximateFloat", _T.DOUBLE, [m], lambda a: float(_q(a))),
        _overload("major", i, [m], lambda a: _v(a)[0]),
        _overload("minor", i, [m], lambda a: _v(a)[1]),
        _overload("patch", i, [m], lambda a: _v(a)[2]),
    ]
    return cel.NewEnv(
        variables={"device": _T.Map(_T.STRING, _T.DYN)},
        extensions=[ext_bindings.ExtBindings(), ext_strings.ExtStrings()],
        functions=functions,
    )


__all__ = [
    "CelRuntimeError",
    "Selector",
    "compile_selector",
    "device_data",
    "split_name",
]
