"""CEL device selectors (scheduler.dra.cel): the `device` variable, Kubernetes' quantity and
semver libraries, the bindings and strings extensions, and compile and runtime errors, after
upstream's k8s.io/dynamic-resource-allocation/cel compile_test.go where it has the case."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from scheduler.dra.cel import (
    QUANTITY,
    SEMVER,
    CelRuntimeError,
    compile_selector,
    device_data,
    split_name,
)
from scheduler.model import InvalidObject

JSON = dict[str, Any]
DRIVER = "dra.example.com"


def evaluate(
    expression: str,
    attributes: JSON | None = None,
    capacity: dict[str, str] | None = None,
    driver: str = DRIVER,
    allow_multiple: bool = False,
) -> bool:
    """Compile (it must compile) and evaluate on one device."""
    selector = compile_selector(expression)
    assert not selector.error, selector.error
    return selector.matches(device_data(driver, attributes or {}, capacity or {}, allow_multiple))


def runtime_error(expression: str, attributes: JSON | None = None, **kw: Any) -> str:
    with pytest.raises(CelRuntimeError) as caught:
        evaluate(expression, attributes, **kw)
    return str(caught.value)


ATTRS = {
    "name": {"string": "fish"},
    "int": {"int": 1},
    "bool": {"bool": True},
    "version": {"version": "1.0.0"},
    "services": {"string": "some_example_value"},
    "other.example.com/name": {"bool": True},
}
CAPACITY = {"quantity": "1Mi", "memory": "80Gi", "half": "500m"}


# --- the device variable ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        pytest.param("true", True, id="true"),
        pytest.param("false", False, id="false"),
        pytest.param(f'device.driver == "{DRIVER}"', True, id="real-driver-name"),
        pytest.param('device.driver == "other"', False, id="other-driver-name"),
        pytest.param(f'device.attributes["{DRIVER}"].name == "fish"', True, id="string"),
        pytest.param(f'device.attributes["{DRIVER}"]["name"] == "fish"', True, id="map-lookup"),
        pytest.param(f'device.attributes["{DRIVER}"].int > 0', True, id="int"),
        pytest.param(f'device.attributes["{DRIVER}"].bool', True, id="bool"),
        pytest.param('device.attributes["other.example.com"].name', True, id="qualified-name"),
        pytest.param(f'"{DRIVER}" in device.attributes', True, id="domain-check-positive"),
        pytest.param(
            f'"quantity" in device.capacity["{DRIVER}"]'
            f' && device.capacity["{DRIVER}"].quantity.isGreaterThan(quantity("1Ki"))',
            True,
            id="check-positive",
        ),
        pytest.param(
            f'!("nothing" in device.capacity["{DRIVER}"])'
            f' || device.capacity["{DRIVER}"].nothing.isGreaterThan(quantity("1Ki"))',
            True,
            id="check-negative",
        ),
        pytest.param(
            f'has(device.attributes["{DRIVER}"].name) && !has(device.attributes["{DRIVER}"].no)',
            True,
            id="has-macro",
        ),
        pytest.param("device.allowMultipleAllocations == false", True, id="allow-multiple"),
        pytest.param(
            'device.attributes["no-such-domain"].size() == 0', True, id="unknown-domain-empty"
        ),
        pytest.param(
            '!has(device.attributes["no-such-domain"].x)', True, id="unknown-domain-has-false"
        ),
        pytest.param(
            'device.capacity["no-such-domain"].size() == 0', True, id="unknown-capacity-domain"
        ),
        pytest.param(
            f"""
            device.capacity["{DRIVER}"].quantity.isGreaterThan(quantity("1Ki")) &&
            device.attributes["{DRIVER}"].bool &&
            device.attributes["{DRIVER}"].int > 0 &&
            device.attributes["{DRIVER}"].name == "fish" &&
            device.attributes["{DRIVER}"].version.isGreaterThan(semver("0.0.1")) &&
            device.capacity["{DRIVER}"]["quantity"].isGreaterThan(quantity("1Ki"))
            """,
            True,
            id="all",
        ),
    ],
)
def test_device_variable(expression: str, expected: bool) -> None:
    """Attributes and capacity are maps by domain, the driver's own for unqualified names."""
    assert evaluate(expression, ATTRS, CAPACITY) is expected


def test_empty_driver_name() -> None:
    """upstream's empty-driver-name."""
    assert evaluate('device.driver == ""', driver="") is True


def test_allow_multiple_allocations_true() -> None:
    assert evaluate("device.allowMultipleAllocations", allow_multiple=True) is True


def test_domain_check_negative() -> None:
    """upstream's domain-check-negative: an unknown domain is not `in` the attributes."""
    assert evaluate('"no-such-domain" in device.attributes') is False


def test_macro_over_one_domain() -> None:
    """upstream's check_attribute_ids: macros over one domain's attributes."""
    assert evaluate(f'device.attributes["{DRIVER}"].exists_one(x, x == "services")', ATTRS)


def test_macro_over_domains() -> None:
    """upstream's check_attribute_domains and check_capacity_domains."""
    assert evaluate(f'device.attributes.exists_one(x, x == "{DRIVER}")', ATTRS)
    assert evaluate(f'device.capacity.exists_one(x, x == "{DRIVER}")', capacity=CAPACITY)


# --- quantity library ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param(
            f'device.capacity["{DRIVER}"].memory.compareTo(quantity("80Gi")) == 0',
            id="compareTo-equal",
        ),
        pytest.param('quantity("1Gi").compareTo(quantity("1G")) == 1', id="compareTo-greater"),
        pytest.param('quantity("1G").compareTo(quantity("1Gi")) == -1', id="compareTo-less"),
        pytest.param('quantity("1024Mi").compareTo(quantity("1Gi")) == 0', id="compareTo-units"),
        pytest.param(
            f'device.capacity["{DRIVER}"].memory.isGreaterThan(quantity("1Gi"))', id="isGreaterThan"
        ),
        pytest.param(
            '!quantity("1Gi").isGreaterThan(quantity("1Gi"))', id="isGreaterThan-equal-is-false"
        ),
        pytest.param(
            f'device.capacity["{DRIVER}"].memory.isLessThan(quantity("0.1Ti"))', id="isLessThan"
        ),
        pytest.param(
            '!quantity("1").isLessThan(quantity("1000m"))', id="isLessThan-equal-is-false"
        ),
        pytest.param(
            'quantity("1500m").add(quantity("500m")).compareTo(quantity("2")) == 0', id="add"
        ),
        pytest.param('quantity("1").add(2) == quantity("3")', id="add-int"),
        pytest.param('quantity("2Ki").sub(quantity("1Ki")) == quantity("1024")', id="sub"),
        pytest.param('quantity("2").sub(3).sign() == -1', id="sub-int-negative"),
        pytest.param('quantity("5").sign() == 1', id="sign-positive"),
        pytest.param('quantity("0").sign() == 0', id="sign-zero"),
        pytest.param('quantity("-5m").sign() == -1', id="sign-negative"),
        pytest.param('quantity("1Ki").isInteger()', id="isInteger"),
        pytest.param('!quantity("10E").isInteger()', id="isInteger-beyond-int64"),
        pytest.param('quantity("2000m").isInteger()', id="isInteger-milli"),
        pytest.param('quantity("1500m").add(quantity("500m")) == quantity("2")', id="equal-sum"),
        pytest.param(
            f'device.capacity["{DRIVER}"].half == quantity("0.5")',
            id="equal-capacity-spelled-differently",
        ),
        pytest.param('quantity("1Gi") != quantity("1G")', id="not-equal"),
        pytest.param(f'!device.capacity["{DRIVER}"].half.isInteger()', id="isInteger-fraction"),
        pytest.param('quantity("1Ki").asInteger() == 1024', id="asInteger"),
        pytest.param('quantity("1500m").asApproximateFloat() == 1.5', id="asApproximateFloat"),
        pytest.param(
            'isQuantity("1Gi") && isQuantity("100m") && isQuantity("1e3")', id="isQuantity"
        ),
        pytest.param('!isQuantity("abc") && !isQuantity("1Gb")', id="isQuantity-false"),
    ],
)
def test_quantity(expression: str) -> None:
    """Kubernetes' quantity library: values compare exactly, whatever their suffixes."""
    assert evaluate(expression, ATTRS, CAPACITY) is True


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        pytest.param(
            'quantity("1500m").asInteger() == 1',
            "cannot convert value to integer",
            id="asInteger-fraction",
        ),
        pytest.param(
            'quantity("10E").asInteger() > 0',
            "cannot convert value to integer",
            id="asInteger-overflow",
        ),
        pytest.param(
            'quantity("abc").sign() == 0', "not a valid Kubernetes quantity", id="quantity-invalid"
        ),
        pytest.param(
            'quantity("1").isGreaterThan(semver("1.0.0"))',
            "no such overload",
            id="quantity-vs-semver",
        ),
    ],
)
def test_quantity_errors(expression: str, message: str) -> None:
    assert message in runtime_error(expression)


# --- semver library ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param(
            f'device.attributes["{DRIVER}"].version.isGreaterThan(semver("0.0.1"))',
            id="attribute-isGreaterThan",
        ),
        pytest.param(
            f'device.attributes["{DRIVER}"].version.isLessThan(semver("1.0.1"))',
            id="attribute-isLessThan",
        ),
        pytest.param(
            f'device.attributes["{DRIVER}"].version.compareTo(semver("1.0.0")) == 0',
            id="attribute-compareTo-equal",
        ),
        pytest.param(
            f'device.attributes["{DRIVER}"].version == semver("1.0.0")', id="attribute-equal"
        ),
        pytest.param('semver("1.2.3").major() == 1', id="major"),
        pytest.param('semver("1.2.3").minor() == 2', id="minor"),
        pytest.param('semver("1.2.3").patch() == 3', id="patch"),
        pytest.param('semver("1.10.0").isGreaterThan(semver("1.9.0"))', id="numeric-order"),
        pytest.param('semver("1.0.0-alpha").isLessThan(semver("1.0.0"))', id="pre-release"),
        pytest.param(
            'semver("1.0.0-alpha.2").isLessThan(semver("1.0.0-alpha.10"))',
            id="pre-release-numeric-parts",
        ),
        pytest.param(
            'semver("1.0.0-alpha").isLessThan(semver("1.0.0-beta"))', id="pre-release-text-parts"
        ),
        pytest.param(
            'semver("1.0.0+build.1").compareTo(semver("1.0.0")) == 0', id="build-metadata-ignored"
        ),
        pytest.param('semver("1.0.0+build.1") == semver("1.0.0")', id="equal-ignores-build"),
        pytest.param('semver("1.0.0") != semver("1.0.1")', id="not-equal"),
        pytest.param('isSemver("1.0.0") && isSemver("1.0.0-rc.1+b5")', id="isSemver"),
        pytest.param(
            '!isSemver("v1.0.0") && !isSemver("1.0") && !isSemver("01.0.0")', id="isSemver-false"
        ),
    ],
)
def test_semver(expression: str) -> None:
    """Kubernetes' semver library, on literals and on version attributes."""
    assert evaluate(expression, ATTRS, CAPACITY) is True


def test_semver_invalid_is_runtime_error() -> None:
    assert "invalid semver" in runtime_error('semver("1.0").major() == 1')


# --- extensions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param(
            f'cel.bind(dra, device.attributes["{DRIVER}"], dra.name == "fish")', id="bind"
        ),
        pytest.param(
            f'cel.bind(m, device.capacity["{DRIVER}"].memory,'
            ' m.isGreaterThan(quantity("1Gi")) && m.isLessThan(quantity("100Gi")))',
            id="bind-quantity",
        ),
        pytest.param(
            f'device.attributes["{DRIVER}"].services.split("example").size() >= 2',
            id="split_attribute",
        ),
        pytest.param(f'device.attributes["{DRIVER}"].name.startsWith("fi")', id="startsWith"),
        pytest.param(f'device.attributes["{DRIVER}"].name.upperAscii() == "FISH"', id="upperAscii"),
        pytest.param(
            f'device.attributes["{DRIVER}"].name.replace("f", "d") == "dish"', id="replace"
        ),
        pytest.param(
            f'device.attributes["{DRIVER}"].services.indexOf("example") == 5', id="indexOf"
        ),
        pytest.param(f'device.attributes["{DRIVER}"].name.substring(1) == "ish"', id="substring"),
        pytest.param(f'device.attributes["{DRIVER}"].services.matches("ex.mple")', id="matches"),
        pytest.param('["a", "b"].join("-") == "a-b"', id="join"),
    ],
)
def test_extensions(expression: str) -> None:
    """cel.bind and the strings library, as upstream's environment has them."""
    assert evaluate(expression, ATTRS, CAPACITY) is True


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        pytest.param(
            "?!", "compilation failed: ERROR: <input>:1:1: Syntax error", id="syntax-error"
        ),
        pytest.param(
            "noSuchVar",
            "compilation failed: ERROR: <input>:1:1: undeclared reference to 'noSuchVar'",
            id="undeclared-reference",
        ),
        pytest.param(
            'device.attributes["x"].y.noSuchFunction()',
            "compilation failed:",
            id="undeclared-function",
        ),
        pytest.param("1", "must evaluate to bool or the unknown type, not int", id="type-error"),
        pytest.param(
            '"fish"',
            "must evaluate to bool or the unknown type, not string",
            id="type-error-string",
        ),
        pytest.param(
            'quantity("1")',
            "must evaluate to bool or the unknown type, not map",
            id="type-error-quantity",
        ),
        pytest.param("1 + 1 == true", "compilation failed:", id="type-mismatch"),
    ],
)
def test_compile_errors(expression: str, message: str) -> None:
    """A selector that does not compile, or is not a bool, keeps the error and no program."""
    selector = compile_selector(expression)
    assert selector.program is None
    assert selector.error.startswith(message), selector.error


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        pytest.param(
            'device.attributes["no-such-domain"].noSuchAttr.isGreaterThan(quantity("0"))',
            "no such key: noSuchAttr",
            id="runtime-error-lookup-identifier",
        ),
        pytest.param(
            'device.attributes["no-such-domain"]["noSuchAttr"].isGreaterThan(quantity("0"))',
            "no such key: noSuchAttr",
            id="runtime-error-lookup-map",
        ),
        pytest.param(
            f'device.attributes["{DRIVER}"].nokey == 1', "no such key: nokey", id="missing-key"
        ),
        pytest.param(
            f'device.attributes["{DRIVER}"].int',
            "CEL result of type int could not be converted to bool",
            id="result-not-bool",
        ),
        pytest.param(
            f'device.attributes["{DRIVER}"].name.exists(x, x == "fish")',
            "",
            id="macro-exists-on-string",
        ),
        pytest.param("1 / 0 == 1", "by zero", id="division-by-zero"),
    ],
)
def test_runtime_errors(expression: str, message: str) -> None:
    """Evaluation errors raise CelRuntimeError with upstream's wording where it shows."""
    assert message in runtime_error(expression, ATTRS)


def test_runtime_error_message_is_exact() -> None:
    """The missing key is named as upstream names it (cel-go's "no such key: <key>", with
    EnhanceRuntimeError's hint)."""
    assert runtime_error(f'device.attributes["{DRIVER}"].nokey == 1', ATTRS) == (
        "no such key: nokey. consider using CEL optional chaining (.? followed by orValue())"
        " or guarding the check with has() for optional fields"
    )


# --- compile_selector, device_data, split_name ---------------------------------------


def test_compile_selector_is_cached() -> None:
    """Each expression compiles once."""
    expression = f'device.driver == "{DRIVER}" && true'
    assert compile_selector(expression) is compile_selector(expression)


def test_selector_literals() -> None:
    """The domains an expression looks up by a literal key are kept (they get empty maps
    when the device has none); other string literals are not domains."""
    selector = compile_selector(
        'device.attributes["a.example.com"].x == \'y\' || "b" == "c"'
        " || device.capacity[ 'd.example.com' ].size() == 0"
    )
    assert selector.literals == frozenset({"a.example.com", "d.example.com"})


def test_matches_does_not_change_the_data() -> None:
    """The empty maps given to unknown domains are the selector's, not the device's."""
    data = device_data(DRIVER, {"x": {"int": 1}}, {})
    compile_selector('device.attributes["other.example.com"].size() == 0').matches(data)
    assert data["device"]["attributes"] == {DRIVER: {"x": 1}}


def test_device_data() -> None:
    """Values as CEL sees them: typed attributes unwrapped, a version and a quantity as the
    one-entry maps the libraries take, names split by domain."""
    data = device_data(
        DRIVER,
        {
            "s": {"string": "a"},
            "i": {"int": 3},
            "b": {"bool": False},
            "v": {"version": "1.2.3"},
            "other.example.com/o": {"string": "x"},
            "unknown": {"future": 1},
        },
        {"memory": "1Gi", "other.example.com/c": "500m"},
        allow_multiple=True,
    )
    assert data == {
        "device": {
            "driver": DRIVER,
            "allowMultipleAllocations": True,
            "attributes": {
                DRIVER: {"s": "a", "i": 3, "b": False, "v": {SEMVER: "1.2.3"}, "unknown": None},
                "other.example.com": {"o": "x"},
            },
            "capacity": {
                DRIVER: {"memory": {QUANTITY: str(Decimal(1024**3))}},
                "other.example.com": {"c": {QUANTITY: "0.5"}},
            },
        }
    }


def test_device_data_bad_quantity() -> None:
    """A capacity that is not a quantity is an InvalidObject."""
    with pytest.raises(InvalidObject):
        device_data(DRIVER, {}, {"memory": "lots"})


def test_device_data_bad_version() -> None:
    """So is a version attribute that is not a semantic version (never a bare ValueError,
    which the allocator would not expect)."""
    with pytest.raises(InvalidObject, match="attribute v: invalid semver"):
        device_data(DRIVER, {"v": {"version": "one"}}, {})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("model", (DRIVER, "model"), id="bare"),
        pytest.param("other.example.com/model", ("other.example.com", "model"), id="qualified"),
        pytest.param(f"{DRIVER}/model", (DRIVER, "model"), id="own-domain"),
    ],
)
def test_split_name(name: str, expected: tuple[str, str]) -> None:
    assert split_name(name, DRIVER) == expected
