"""Metric rows of the training loop: ``record`` accumulates, ``dump`` averages and writes one row to every writer.

Rows always go to ``metrics.csv`` and ``metrics.jsonl`` in the run directory (the CSV is rewritten when a new
column appears, so it stays readable by pandas); wandb is optional and offline unless configured otherwise.
A resumed run appends to the same files.
"""

from __future__ import annotations

import csv
import json
import math
import os
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from pwm.config import LoggerConfig


class MetricLogger:
    def __init__(self, run_dir: str | Path, cfg: LoggerConfig, config: dict | None = None, name: str | None = None):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.cfg = cfg
        self._sums: dict[str, float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)
        self._jsonl = self.run_dir / "metrics.jsonl"
        self._csv = self.run_dir / "metrics.csv"
        self._columns: list[str] = self._existing_columns()
        self._wandb = self._init_wandb(config, name) if cfg.wandb else None

    def _existing_columns(self) -> list[str]:
        if not self._csv.is_file():
            return []
        with open(self._csv, newline="") as f:
            return next(csv.reader(f), [])

    def _init_wandb(self, config: dict | None, name: str | None):
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        run_id_file = self.run_dir / "wandb_run_id"
        run_id = run_id_file.read_text().strip() if run_id_file.is_file() else uuid.uuid4().hex[:12]
        run_id_file.write_text(run_id)
        return wandb.init(
            project=self.cfg.project, entity=self.cfg.entity, group=self.cfg.group, name=name, config=config,
            dir=str(self.run_dir), mode=self.cfg.wandb_mode, id=run_id, resume="allow",
        )  # fmt: skip

    def record(self, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self._sums[key] += float(value)
            self._counts[key] += 1

    def dump(self, step: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write the averages recorded since the last dump (plus ``extra`` as given) and reset them."""
        row: dict[str, Any] = {"step": step}
        row.update({k: self._sums[k] / self._counts[k] for k in sorted(self._sums)})
        row.update(extra or {})
        self._sums.clear()
        self._counts.clear()
        with open(self._jsonl, "a") as f:
            f.write(json.dumps({k: _json_safe(v) for k, v in row.items()}) + "\n")
        self._write_csv(row)
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in row.items() if k != "step"}, step=step)
        return row

    def _write_csv(self, row: dict[str, Any]) -> None:
        new = [k for k in row if k not in self._columns]
        if new:
            self._columns += new
            rows = self._read_rows()
            with open(self._csv, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self._columns)
                writer.writeheader()
                writer.writerows(rows)
        with open(self._csv, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self._columns).writerow(row)

    def _read_rows(self) -> list[dict[str, str]]:
        if not self._csv.is_file():
            return []
        with open(self._csv, newline="") as f:
            return list(csv.DictReader(f))

    def truncate_after(self, step: int) -> None:
        """Drop rows written after ``step`` (a resumed run rewrites them), in both the CSV and the JSONL file."""
        rows = [r for r in self._read_rows() if int(float(r["step"])) <= step]
        if self._csv.is_file():
            with open(self._csv, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self._columns)
                writer.writeheader()
                writer.writerows(rows)
        if self._jsonl.is_file():
            lines = [ln for ln in self._jsonl.read_text().splitlines() if ln and json.loads(ln)["step"] <= step]
            self._jsonl.write_text("".join(f"{ln}\n" for ln in lines))

    def close(self) -> None:
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
