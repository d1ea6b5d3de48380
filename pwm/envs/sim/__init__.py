"""Batched, differentiable simulators on the torch ``BatchedEnv`` contract (``base.py``); dflex's seven tasks are
registered in ``registry.py``. See ``docs/simulators.md``."""
