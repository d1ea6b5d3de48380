"""The one way pwm reads a ``torch.save`` file: weights-only, with an explicit allowlist per file format.

``torch.load(weights_only=False)`` unpickles arbitrary objects, so a crafted ``.pt`` file (a downloaded
checkpoint or dataset chunk, a ``general.checkpoint=`` argument) would run code. Every loader in pwm calls
:func:`safe_torch_load` instead: the weights-only unpickler with torch's built-in set (tensors, storages, dtypes,
``torch.Size``, ``torch.device``, ``OrderedDict`` and plain Python values) plus exactly the extra types that
loader's format needs (``allow``), and nothing else, not even what other libraries add to torch's global
allowlist when imported (tensordict adds a dozen). A file that needs anything more is refused with
:class:`UnsafeFileError`, one line naming the file and the type; loaders re-raise it as their own error type.

The one way to trust a file deliberately: ``PWM_TRUST_FILES=1`` in the environment, which loads with
``weights_only=False`` (full pickle: only for files from a source you trust).
"""

from __future__ import annotations

import os
import pickle
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

TRUST_ENV = "PWM_TRUST_FILES"
_LOCK = threading.Lock()
# How the weights-only unpickler names what it refused (its wording in torch 2.13).
_REFUSED = (
    re.compile(r"GLOBAL (\S+) (?:was not an allowed global|whose module)"),
    re.compile(r"but got <class '([^']+)'>"),
    re.compile(r"unrecognized function (\S+)"),
)


# The allowlist, by format: what each needs beyond torch's built-in set. Run states, best_policy.pt, episode
# files and TD-MPC2 / PWM world-model checkpoints need nothing more (tensordict metadata in current TD-MPC2
# checkpoints is torch.Size / torch.device, which are built in); dataset chunks are pickled TensorDicts.
RUN_STATE: tuple[Any, ...] = ()
BEST_POLICY: tuple[Any, ...] = ()
EPISODES: tuple[Any, ...] = ()
CHECKPOINT: tuple[Any, ...] = ()


def dataset_chunk_types() -> tuple[Any, ...]:
    """A pickled ``TensorDict`` (TD-MPC2's ``chunk_<i>.pt``): the class, tensordict's rebuild function, and the
    key dict under its old name (tensordict <= 0.4 pickled a dict subclass, ``tensordict.utils._StringOnlyDict``)."""
    from tensordict import TensorDict
    from tensordict._reductions import _make_td

    old_keys = ((dict, "tensordict.utils._StringOnlyDict"),) if torch.__version__ >= (2, 6) else ()  # pairs: 2.6+
    return (TensorDict, _make_td, *old_keys)


class UnsafeFileError(ValueError):
    """A file needs a type outside its format's allowlist (or cannot be read weights-only); one-line message."""


def trusted() -> bool:
    """True when the user set ``PWM_TRUST_FILES=1``: files are then fully unpickled."""
    return os.environ.get(TRUST_ENV, "") == "1"


def safe_torch_load(path: str | os.PathLike, *, what: str, allow: Sequence[Any] = (), **kw: Any) -> Any:
    """``torch.load(path, weights_only=True, **kw)`` allowing torch's built-in set plus ``allow`` only.

    ``what`` names the format in the refusal (``"run state"``, ``"dataset chunk"``). ``allow`` holds classes
    or functions, or ``(object, "module.name")`` pairs for a type pickled under another name. Raises
    :class:`UnsafeFileError` when the file needs anything else; other read errors (a truncated or foreign file)
    propagate as torch raises them (the weights-only reader's own in one line).
    """
    if trusted():
        return torch.load(path, weights_only=False, **kw)
    try:
        with _only_globals(allow):
            return torch.load(path, weights_only=True, **kw)
    except pickle.UnpicklingError as err:
        name = _refused_type(str(err))
        if name is None:  # not a type: a corrupt or foreign file, which the caller reports as unreadable
            raise pickle.UnpicklingError(_reason(str(err))) from None
        raise UnsafeFileError(
            f"{Path(path)}: refusing to load: it needs the type {name!r}, which a pwm {what} never contains; "
            f"if you trust this file, set {TRUST_ENV}=1"
        ) from None


def _refused_type(message: str) -> str | None:
    for pattern in _REFUSED:
        found = pattern.search(message)
        if found:
            name = found.group(1).strip("`.")
            return name if "." in name else f"builtins.{name}"  # torch names builtins without their module
    return None


def _reason(message: str) -> str:
    """torch's multi-paragraph weights-only message cut to its one informative line."""
    reason = message.split("WeightsUnpickler error:")[-1].split("Check the documentation")[0]
    return "weights-only reader: " + (" ".join(reason.split())[:200] or "no reason given")


@contextmanager
def _only_globals(allow: Sequence[Any]) -> Iterator[None]:
    """Replace torch's process-wide user allowlist by ``allow`` for the duration of one load."""
    with _LOCK:
        saved = torch.serialization.get_safe_globals()
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(list(allow))
        try:
            yield
        finally:
            torch.serialization.clear_safe_globals()
            torch.serialization.add_safe_globals(saved)
