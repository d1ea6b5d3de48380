"""Range checks for config fields: one table per schema, one line per violation, run before anything is built."""

from __future__ import annotations

from collections.abc import Callable

from pwm.utils.errors import ConfigError

RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "positive": (lambda v: v > 0, "must be > 0"),
    "at_least_1": (lambda v: v >= 1, "must be >= 1"),
    "non_negative": (lambda v: v >= 0, "must be >= 0"),
    "discount": (lambda v: 0 < v <= 1, "must lie in (0, 1]"),
    "fraction": (lambda v: 0 <= v < 1, "must lie in [0, 1)"),
    "rate": (lambda v: 0 < v <= 1, "must lie in (0, 1]"),
}


def check_fields(obj: object, prefix: str, rules: dict[str, str]) -> None:
    """Raise a one-line ConfigError for the first field of ``obj`` outside its rule (``None`` values pass: they
    mean "derived" or "default")."""
    for name, rule in rules.items():
        value = getattr(obj, name)
        values = value if isinstance(value, list | tuple) else [value]
        ok, allowed = RULES[rule]
        if any(v is not None and not ok(v) for v in values):
            raise ConfigError(f"{prefix}{name}={value} {allowed}")


def check_choice(obj: object, prefix: str, name: str, allowed: tuple[str, ...]) -> None:
    value = getattr(obj, name)
    if value not in allowed:
        raise ConfigError(f"{prefix}{name}={value!r}; choose one of {', '.join(allowed)}")
