"""Seeding and RNG capture, so that a seed repeats a CPU run and a resumed run continues the same streams."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng() -> dict:
    """The state of every global RNG a run draws from (python, numpy, torch CPU and CUDA).

    Only tensors and plain Python values, so that a run state loads weights-only: numpy's legacy state (a tuple
    holding a uint32 array) is stored as a dict with the key array as an int32 tensor of the same bits.
    """
    state = {"python": random.getstate(), "numpy": _numpy_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(_numpy_tuple(state["numpy"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _numpy_state() -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "kind": str(kind),
        "keys": torch.from_numpy(np.ascontiguousarray(keys, dtype=np.uint32).view(np.int32).copy()),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }


def _numpy_tuple(state: dict | tuple) -> tuple:
    """``np.random.set_state``'s tuple from :func:`_numpy_state`'s dict (a tuple, from older run states, as is)."""
    if isinstance(state, tuple):
        return state
    keys = state["keys"].numpy().view(np.uint32)
    return state["kind"], keys, state["pos"], state["has_gauss"], state["cached_gaussian"]
