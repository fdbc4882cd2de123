"""Label selectors, and label / DNS-1123 validation, with apimachinery's rules, written once.

This is berth's bottom layer: it imports nothing of ours, so the model (and through it every
plugin), the configuration and the webhook all give a label key, a label value and a selector
the same meaning, the one k8s.io/apimachinery v0.37.2 gives them.

**Validation** returns upstream's list of problems, word for word, and an empty list for a
valid string:

- `is_qualified_name`: a label key, `[DNS-1123 subdomain prefix "/"] name`
  (`validation.IsQualifiedName`, which is `content.IsLabelKey` since v0.35);
- `is_valid_label_value` (`validation.IsValidLabelValue` = `content.IsLabelValue`);
- `is_dns1123_label`, `is_dns1123_subdomain` (`pkg/util/validation`).

Upstream measures length with Go's `len()`, in UTF-8 bytes, and so do we. Its wording differs
by origin, and we keep the difference: label keys and values (and a key's prefix, which
`content.IsLabelKey` checks with `content.IsDNS1123Subdomain`) are "no more than N bytes", while
`util/validation`'s own DNS checks still say "no more than N characters".

**Selectors** follow `pkg/labels` and `metav1.LabelSelectorAsSelector`:

- `Requirement`: key, operator, values. In, NotIn, Exists and DoesNotExist as in a
  `metav1.LabelSelector`; Gt and Lt, which only node selector terms use, compare base-10
  int64s. NotIn and DoesNotExist hold for a missing key; an unknown operator matches nothing.
- `LabelSelector`: every requirement holds, so the empty selector matches every label set;
  `nothing=True` is the nil selector, which matches none (`labels.Nothing()`). Whether a nil
  selector means "nothing" or "not given" is the caller's call, as upstream's callers decide.
- `parse_label_selector(raw, path)`: compile a `metav1.LabelSelector` from JSON (or YAML),
  validating keys and values as `labels.NewRequirement` does; raises `SelectorError` listing
  every problem with its field path.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# --------------------------------------------------------------------------------------------
# validation (apimachinery pkg/api/validate/content and pkg/util/validation)
# --------------------------------------------------------------------------------------------

LABEL_KEY_NAME_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 63
DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253

# The formats are upstream's strings, shown as they are in the messages.
_LABEL_KEY_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_KEY_ERR = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_LABEL_VALUE_FMT = f"({_LABEL_KEY_FMT})?"
_LABEL_VALUE_ERR = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character"
)
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_ERR = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + r"(\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_ERR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character"
)

# Go anchors each with ^...$; fullmatch is the same (Go's $ never matches before a final "\n").
_LABEL_KEY = re.compile(_LABEL_KEY_FMT)
_LABEL_VALUE = re.compile(_LABEL_VALUE_FMT)
_DNS1123_LABEL = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN = re.compile(_DNS1123_SUBDOMAIN_FMT)


def is_qualified_name(value: str) -> list[str]:
    """content.IsLabelKey: an optional DNS-1123 subdomain prefix and '/', then a name of at
    most 63 bytes."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part " + _EMPTY)
        else:
            errs += ["prefix part " + m for m in _subdomain_problems(prefix, unit="bytes")]
    else:
        return [
            "a valid label key "
            + _regex_error(_LABEL_KEY_ERR, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part " + _EMPTY)
    elif _size(name) > LABEL_KEY_NAME_MAX_LENGTH:
        errs.append("name part " + _max_len_error(LABEL_KEY_NAME_MAX_LENGTH, "bytes"))
    if not _LABEL_KEY.fullmatch(name):
        errs.append(
            "name part "
            + _regex_error(_LABEL_KEY_ERR, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def is_valid_label_value(value: str) -> list[str]:
    """content.IsLabelValue: empty, or a name of at most 63 bytes."""
    errs: list[str] = []
    if _size(value) > LABEL_VALUE_MAX_LENGTH:
        errs.append(_max_len_error(LABEL_VALUE_MAX_LENGTH, "bytes"))
    if not _LABEL_VALUE.fullmatch(value):
        errs.append(
            _regex_error(_LABEL_VALUE_ERR, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345")
        )
    return errs


def is_dns1123_label(value: str) -> list[str]:
    """validation.IsDNS1123Label: lowercase alphanumerics and '-', at most 63 characters."""
    errs: list[str] = []
    if _size(value) > DNS1123_LABEL_MAX_LENGTH:
        errs.append(_max_len_error(DNS1123_LABEL_MAX_LENGTH, "characters"))
    if not _DNS1123_LABEL.fullmatch(value):
        if _DNS1123_SUBDOMAIN.fullmatch(value):
            # A valid subdomain but not a valid label: with the length checked, it is the dots.
            errs.append("must not contain dots")
        else:
            errs.append(_regex_error(_DNS1123_LABEL_ERR, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    """validation.IsDNS1123Subdomain: dot-separated DNS-1123 labels, at most 253 characters."""
    return _subdomain_problems(value, unit="characters")


def _subdomain_problems(value: str, *, unit: str) -> list[str]:
    """IsDNS1123Subdomain; `unit` is the word its MaxLenError uses (content's says "bytes")."""
    errs: list[str] = []
    if _size(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(_max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH, unit))
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        errs.append(_regex_error(_DNS1123_SUBDOMAIN_ERR, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


_EMPTY = "must be non-empty"  # EmptyError()


def _max_len_error(length: int, unit: str) -> str:
    return f"must be no more than {length} {unit}"


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    """Upstream's RegexError, character for character."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def _size(value: str) -> int:
    """Go's len(): the length in UTF-8 bytes."""
    return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))


# --------------------------------------------------------------------------------------------
# selectors (apimachinery pkg/labels, metav1.LabelSelectorAsSelector)
# --------------------------------------------------------------------------------------------

IN, NOT_IN, EXISTS, DOES_NOT_EXIST, GT, LT = "In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"
# The operators a metav1.LabelSelector accepts (Gt and Lt are node selectors' only).
SELECTOR_OPERATORS = (IN, NOT_IN, EXISTS, DOES_NOT_EXIST)
_SELECTOR_FIELDS = ("matchLabels", "matchExpressions")
_EXPRESSION_FIELDS = ("key", "operator", "values")


@dataclass(frozen=True, slots=True)
class Requirement:
    """One requirement on a label (labels.Requirement): a matchExpressions entry, a matchLabels
    pair (as In with one value), or a node selector term's matchExpressions / matchFields."""

    key: str
    operator: str  # In NotIn Exists DoesNotExist Gt Lt
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return requirement_matches(self, labels.get(self.key))


def requirement_matches(req: Requirement, value: str | None) -> bool:
    """Does a label (or field) value satisfy one requirement? None = label absent.
    (labels.Requirement.Matches, on the one value it looks up.)"""
    op = req.operator
    if op == IN:
        return value is not None and value in req.values
    if op == NOT_IN:
        return value is None or value not in req.values
    if op == EXISTS:
        return value is not None
    if op == DOES_NOT_EXIST:
        return value is None
    if op not in (GT, LT) or value is None or len(req.values) != 1:
        return False
    have, want = _go_int64(value), _go_int64(req.values[0])
    if have is None or want is None:
        return False
    return have > want if op == GT else have < want


_INT64 = re.compile(r"[+-]?[0-9]+")


def _go_int64(text: str) -> int | None:
    """strconv.ParseInt(text, 10, 64), which labels.Requirement uses for Gt/Lt: no spaces,
    no underscores, within int64 (Python's int() accepts all three)."""
    if not _INT64.fullmatch(text):
        return None
    number = int(text)
    return number if -(2**63) <= number < 2**63 else None


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A compiled metav1.LabelSelector: every requirement holds (an empty selector matches
    every label set). `nothing` is a missing (nil) selector, which matches no label set, as
    upstream's LabelSelectorAsSelector(nil) = labels.Nothing()."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.nothing:
            return False
        return all(requirement_matches(r, labels.get(r.key)) for r in self.requirements)


class SelectorError(ValueError):
    """A label selector that does not compile; `errors` lists every problem as
    `path: message`."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = list(errors)


def parse_label_selector(raw: object, path: str, *, strict: bool = False) -> LabelSelector:
    """Compile a metav1.LabelSelector from its JSON form, as LabelSelectorAsSelector does.

    None (the field not set) is the nil selector, which matches nothing; `{}` matches
    everything. Keys must be qualified names and values label values; In and NotIn need
    values, Exists and DoesNotExist take none. `strict` also refuses fields a LabelSelector
    does not have (for files people write; the API server has already dropped them from what
    it sends). Raises SelectorError with every problem, each prefixed by its field path.
    """
    if raw is None:
        return LabelSelector(nothing=True)
    if not isinstance(raw, Mapping):
        raise SelectorError([f"{path}: must be a LabelSelector mapping (got {_show(raw)})"])
    errors: list[str] = []
    if strict:
        errors += [f"{path}.{k}: unknown field" for k in raw if k not in _SELECTOR_FIELDS]
    requirements: list[Requirement] = []
    match_labels = raw.get("matchLabels") or {}
    if not isinstance(match_labels, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in match_labels.items()
    ):
        errors.append(
            f"{path}.matchLabels: must map label keys to string values, quote them "
            f"(got {_show(match_labels)})"
        )
    else:
        for key, value in sorted(match_labels.items()):
            where = f"{path}.matchLabels[{key}]"
            errors += _invalid(where, "label key", key, _key_problems(key))
            errors += _invalid(where, "label value", value, _value_problems(value))
            requirements.append(Requirement(key, IN, (value,)))
    expressions = raw.get("matchExpressions") or []
    if not isinstance(expressions, list):
        errors.append(f"{path}.matchExpressions: must be a list (got {_show(expressions)})")
        expressions = []
    for i, expression in enumerate(expressions):
        requirement = _expression(expression, f"{path}.matchExpressions[{i}]", strict, errors)
        if requirement is not None:
            requirements.append(requirement)
    if errors:
        raise SelectorError(errors)
    return LabelSelector(tuple(requirements))


def _expression(raw: object, path: str, strict: bool, errors: list[str]) -> Requirement | None:
    """One matchExpressions entry as labels.NewRequirement checks it; problems go to
    `errors`, and None comes back when the entry cannot become a requirement at all."""
    if not isinstance(raw, Mapping):
        errors.append(f"{path}: must be a mapping (got {_show(raw)})")
        return None
    if strict:
        errors += [f"{path}.{k}: unknown field" for k in raw if k not in _EXPRESSION_FIELDS]
    key, op, values = raw.get("key"), raw.get("operator"), raw.get("values") or []
    if not isinstance(key, str) or not key:
        errors.append(f"{path}.key: required, a label key (got {_show(key)})")
        return None
    errors += _invalid(f"{path}.key", "label key", key, _key_problems(key))
    if op not in SELECTOR_OPERATORS:
        errors.append(
            f"{path}.operator: must be one of {', '.join(SELECTOR_OPERATORS)} (got {_show(op)})"
        )
        return None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        errors.append(f"{path}.values: must be a list of strings (got {_show(values)})")
        return None
    if op in (IN, NOT_IN) and not values:
        errors.append(f"{path}.values: must be non-empty for operator {op}")
    if op in (EXISTS, DOES_NOT_EXIST) and values:
        errors.append(f"{path}.values: must be empty for operator {op}")
    for j, value in enumerate(values):
        errors += _invalid(f"{path}.values[{j}]", "label value", value, _value_problems(value))
    return Requirement(key, op, tuple(values))


# Every pod of a workload repeats its selector's keys and values: check each string once.
@functools.lru_cache(maxsize=4096)
def _key_problems(key: str) -> tuple[str, ...]:
    return tuple(is_qualified_name(key))


@functools.lru_cache(maxsize=4096)
def _value_problems(value: str) -> tuple[str, ...]:
    return tuple(is_valid_label_value(value))


def _invalid(path: str, what: str, value: str, problems: Sequence[str]) -> list[str]:
    """One error for a bad key or value, its problems joined as labels.NewRequirement joins
    them."""
    if not problems:
        return []
    shown = json.dumps(value, ensure_ascii=False)
    return [f"{path}: invalid {what} {shown}: {'; '.join(problems)}"]


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
