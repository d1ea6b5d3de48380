"""Error types every layer may raise; they live at the bottom so that no module imports upward for them."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config value is invalid; the message is one line naming the key, the value and what is allowed."""
