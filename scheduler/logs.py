"""Logging: component-base's log flags onto Python's logging.

Two formats, as kube-scheduler's `--logging-format`:

- `json` (berth's default): one JSON object a line, `ts`/`level`/`logger`/`msg` and the
  record's `extra` fields;
- `text`: klog's structured text header and `key="value"` pairs,
  `I1130 12:32:08.097786   22927 cycle.py:106] "bound" pod="ns/a" node="n1"`.

Verbosity (`-v`, klog's levels) maps onto Python levels: berth's info lines are few (start,
leadership, configuration, problems), so
  - `-v` 0-1: INFO for berth, WARNING for libraries (aiohttp, kopf, asyncio): the summary;
  - `-v` 2-3: INFO, libraries' too (their access logs excepted): the default, as
    kube-scheduler's Deployments run at -v=2;
  - `-v` 4+: DEBUG for berth (watch resumes, lease races, extender calls); 6+ for libraries too.
berth's own `--log-level` (debug|info|warning|error) wins over `-v` when given.

`--vmodule pattern=N,...` (text only, as upstream) gives the records of source files whose base
name (without `.py`) matches a glob `pattern` the level `-v=N` would give. `--log-*-split-stream`
(alpha, behind LoggingAlphaOptions as upstream) sends info and below to stdout and errors to
stderr. Flush frequency and info buffer sizes are accepted and checked: Python's stream handler
writes each record at once, so they change nothing.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["JsonFormatter", "LogOptions", "TextFormatter", "level_for", "setup", "validate"]

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)))
_LIBRARIES = ("aiohttp", "kopf", "asyncio", "kubernetes", "urllib3")
_DEFAULT_VERBOSITY = 2


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD and key not in ("message", "asctime")
    }


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(_extras(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    """klog's text header (`Lmmdd hh:mm:ss.uuuuuu pid file:line]`), the message quoted, then
    the `extra` fields as key=value, strings quoted (klog's structured text)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%m%d %H:%M:%S", time.localtime(record.created))
        micros = int(record.created % 1 * 1_000_000)
        head = f"{record.levelname[0]}{stamp}.{micros:06d} {os.getpid():7d} "
        parts = [f"{head}{record.filename}:{record.lineno}]", _quote(record.getMessage())]
        parts += [f"{key}={_value(value)}" for key, value in _extras(record).items()]
        text = " ".join(parts)
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def _quote(text: str) -> str:
    return orjson.dumps(text).decode()


def _value(value: Any) -> str:
    if isinstance(value, bool | int | float) or value is None:
        return orjson.dumps(value).decode()
    if isinstance(value, str):
        return _quote(value)
    return orjson.dumps(value, default=str).decode()


@dataclass(frozen=True)
class LogOptions:
    """component-base's LoggingConfiguration, as flags give it. `level` is berth's
    `--log-level` (None: from `verbosity`); `vmodule` is klog's `pattern=N,...` text."""

    format: str = "json"
    verbosity: int | None = None
    vmodule: str = ""
    level: str | None = None
    split_stream: bool = False
    info_buffer_size: str | None = None


def level_for(verbosity: int) -> int:
    """The Python level berth's own loggers get at klog verbosity `verbosity`."""
    return logging.DEBUG if verbosity >= 4 else logging.INFO


def validate(options: LogOptions, alpha_flags: list[str], alpha_options: bool) -> list[str]:
    """component-base's logsapi Validate, its field paths and wording: `alpha_flags` are the
    alpha options set (`options.json.splitStream`, ...), refused unless `alpha_options` (the
    LoggingAlphaOptions gate) is on."""
    errs = []
    if options.vmodule and options.format != "text":
        errs.append("vmodule: Forbidden: Only supported for text log format")
    if not alpha_options:
        errs += [
            f"{path}: Forbidden: Feature LoggingAlphaOptions is disabled" for path in alpha_flags
        ]
    return errs


class _VModule(logging.Filter):
    """Per source file thresholds from --vmodule; other files get `default`."""

    def __init__(self, patterns: list[tuple[str, int]], default: int) -> None:
        super().__init__()
        self.patterns = patterns
        self.default = default

    def filter(self, record: logging.LogRecord) -> bool:
        module = os.path.splitext(record.filename)[0]
        for pattern, level in self.patterns:
            if fnmatch.fnmatchcase(module, pattern):
                return record.levelno >= level
        return record.levelno >= self.default


class _Below(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < self.level


def setup(level: str | LogOptions = "info") -> None:
    """Configure the root logger. A plain level string (what `webhook`/`controller` pass) is
    JSON at that level."""
    options = LogOptions(level=level) if isinstance(level, str) else level
    verbosity = _DEFAULT_VERBOSITY if options.verbosity is None else options.verbosity
    base = logging.getLevelName(options.level.upper()) if options.level else level_for(verbosity)
    formatter: logging.Formatter = TextFormatter() if options.format == "text" else JsonFormatter()
    handlers = _handlers(options.split_stream)
    threshold = base
    if options.vmodule:
        patterns = [
            (pattern, level_for(int(n)))
            for pattern, _, n in (item.partition("=") for item in options.vmodule.split(","))
            if pattern
        ]
        vfilter = _VModule(patterns, base)
        threshold = min([base, *(lvl for _, lvl in patterns)])
        for handler in handlers:
            handler.addFilter(vfilter)
    for handler in handlers:
        handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(threshold)
    library = logging.WARNING if verbosity < 2 else logging.INFO
    if verbosity >= 6:
        library = logging.DEBUG
    if options.level:
        library = logging.NOTSET  # --log-level: libraries follow the root, as they always did
    for name in _LIBRARIES:
        logging.getLogger(name).setLevel(library)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _handlers(split: bool) -> list[logging.Handler]:
    if not split:
        return [logging.StreamHandler(sys.stderr)]
    out: logging.Handler = logging.StreamHandler(sys.stdout)
    out.addFilter(_Below(logging.ERROR))
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.ERROR)
    return [out, err]
