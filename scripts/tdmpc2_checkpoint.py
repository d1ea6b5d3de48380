"""Inspect, verify and convert TD-MPC2 / PWM world-model checkpoints from the command line.

    python scripts/tdmpc2_checkpoint.py inspect mt30-5M.pt
    python scripts/tdmpc2_checkpoint.py verify mt30-5M.pt --task mt30 [--size 5]
    python scripts/tdmpc2_checkpoint.py convert mt30-5M.pt mt30-5M-pwm.pt --to pwm --task mt30

The logic lives in ``pwm.checkpoint.tdmpc2_cli``; the layouts are described in external/README.md.
"""

from __future__ import annotations

import sys

from pwm.checkpoint.tdmpc2_cli import main

if __name__ == "__main__":
    sys.exit(main())
