"""Typed settings: one frozen dataclass per section, parsed once, refusing what it cannot read.

The kernel owns two sections (`CoreSettings`, `MailSettings`); each plugin declares its own
(`Plugin.settings`). A field `public_url` of a section whose PREFIX is "" is read from
`MADOGUCHI_PUBLIC_URL`; a field `channel_secret` of `LineSettings` (PREFIX "LINE_") from
`MADOGUCHI_LINE_CHANNEL_SECRET`. Tests pass the same names without `MADOGUCHI_` to
`create_app(overrides)`.

A value that cannot be read (a boolean that is neither 1/0, true/false, yes/no nor on/off, a
number that is not one, a choice not offered) stops the start with a message naming the
variable — a mistyped boolean never silently becomes false (as securedrop's `sdconfig.py`).

Code reads a section with `LineSettings.current()` (the current app's) or
`section(LineSettings, app)`. `app.config["MADOGUCHI"]` is a read-only flat view of every
section by variable name, for templates and diagnostics.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from flask import Flask, current_app

EXTENSION_KEY = "madoguchi.settings"
ENV_PREFIX = "MADOGUCHI_"
# Variables that are not settings of the app (the test suite's, the CLI's password prompt).
NOT_SETTINGS = ("MADOGUCHI_TEST_", "MADOGUCHI_NEW_")

S = TypeVar("S")


class ConfigError(RuntimeError):
    """Raised at start-up when the configuration cannot work safely."""


def choice(default: str, *choices: str, doc: str = "") -> Any:
    """A text setting limited to `choices`."""
    return dataclasses.field(default=default, metadata={"choices": choices, "doc": doc})


def secret(default: str = "", doc: str = "") -> Any:
    """A text setting never shown in a page, a log or an error message."""
    return dataclasses.field(default=default, metadata={"secret": True, "doc": doc})


class Section:
    """Base of a settings section: a frozen dataclass with defaults for every field."""

    PREFIX: ClassVar[str] = ""

    @classmethod
    def current(cls: type[S]) -> S:
        return section(cls)

    @classmethod
    def variable(cls, name: str) -> str:
        return f"{cls.PREFIX}{name}".upper()


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse(kind: Any, value: Any, name: str, meta: Mapping) -> Any:
    """One value from text (the environment) or from a Python value (test overrides)."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ConfigError(f"{ENV_PREFIX}{name}: expected on/off (1/0, true/false), got {value!r}")
    if kind is int:
        if isinstance(value, bool):
            raise ConfigError(f"{ENV_PREFIX}{name}: expected a whole number, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{ENV_PREFIX}{name}: expected a whole number, got {value!r}"
            ) from None
    if kind is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{ENV_PREFIX}{name}: expected a number, got {value!r}") from None
    if typing.get_origin(kind) is tuple:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return tuple(str(item) for item in value or ())
    text = "" if value is None else str(value)
    choices = meta.get("choices")
    if choices and text not in choices:
        raise ConfigError(f"{ENV_PREFIX}{name}: expected one of {', '.join(choices)}, got {text!r}")
    return text


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """A section's field types, resolved once per process (each app parses every section)."""
    return typing.get_type_hints(cls)


def parse_section(cls: type[S], values: Mapping[str, Any]) -> S:
    """Build a section from a flat mapping of variable names (without MADOGUCHI_)."""
    hints = _hints(cls)
    kwargs = {}
    for item in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = cls.variable(item.name)  # type: ignore[attr-defined]
        if name in values:
            kwargs[item.name] = _parse(hints[item.name], values[name], name, item.metadata)
    return cls(**kwargs)


def variables(cls: type) -> dict[str, Any]:
    """The section's variable names and their values (the flat view)."""
    return {cls.variable(item.name): item for item in dataclasses.fields(cls)}  # type: ignore


def environment() -> dict[str, str]:
    return {
        key.removeprefix(ENV_PREFIX): value
        for key, value in os.environ.items()
        if key.startswith(ENV_PREFIX) and not key.startswith(NOT_SETTINGS)
    }


class Settings:
    """The parsed sections of one app, with the raw values they were parsed from."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = dict(raw)
        self.sections: dict[type, Any] = {}

    def add(self, cls: type[S]) -> S:
        parsed = parse_section(cls, self.raw)
        self.sections[cls] = parsed
        return parsed

    def flat(self) -> Mapping[str, Any]:
        values: dict[str, Any] = {}
        for cls, parsed in self.sections.items():
            for item in dataclasses.fields(cls):
                values[cls.variable(item.name)] = getattr(parsed, item.name)
        return types.MappingProxyType(values)

    def unknown_variables(self) -> list[str]:
        known = {name for cls in self.sections for name in variables(cls)}
        return sorted(name for name in environment() if name not in known)


def init_app(app: Flask, raw: Mapping[str, Any]) -> Settings:
    found = app.extensions[EXTENSION_KEY] = Settings(raw)
    return found


def add_section(app: Flask, cls: type[S]) -> S:
    """Parse a plugin's section for this app (at install) and refresh the flat view."""
    store: Settings = app.extensions[EXTENSION_KEY]
    parsed = store.add(cls)
    app.config["MADOGUCHI"] = store.flat()
    return parsed


def section(cls: type[S], app: Flask | None = None) -> S:
    target = app if app is not None else current_app
    return target.extensions[EXTENSION_KEY].sections[cls]


def override(app: Flask, **values: Any) -> None:
    """Change settings of a running app (tests only): re-parse every section with the values."""
    store: Settings = app.extensions[EXTENSION_KEY]
    store.raw.update(values)
    for cls in list(store.sections):
        store.add(cls)
    app.config["MADOGUCHI"] = store.flat()
