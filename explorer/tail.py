"""A training run's ``metrics.jsonl`` followed as it grows, reading only what was
appended (plain Python)."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path


class MetricsTail:
    """A ``metrics.jsonl`` read incrementally: each :meth:`poll` reads only the bytes
    appended since the last one (a partial last line waits for its end). A file replaced
    or shortened (the harness trims it on resume) is read again from its start."""

    def __init__(self, path: Path):
        self.path = path
        self.offset, self.inode, self.partial = 0, None, b""
        self.rows: list[dict] = []
        self.keys: dict[str, None] = {}  # every numeric column seen, in order of arrival
        self.seen: list[tuple[float, int]] = []  # (wall time, step) when lines arrived

    def poll(self) -> int:
        """Read what was appended; return the number of new rows."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return 0
        if st.st_ino != self.inode or st.st_size < self.offset:
            self.offset, self.inode, self.partial, self.rows = 0, st.st_ino, b"", []
            self.keys = {}
        if st.st_size == self.offset:
            return 0
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = self.partial + fh.read(st.st_size - self.offset)
        self.offset = st.st_size
        *lines, self.partial = data.split(b"\n")
        new = 0
        for line in lines:
            try:
                row = json.loads(line)
                int(row["step"])
            except (ValueError, KeyError, TypeError):
                continue
            self.rows.append(row)
            self.keys.update((k, None) for k, v in row.items()
                             if isinstance(v, (int, float)) and not isinstance(v, bool))
            new += 1
        if new:
            self.seen = [*self.seen[-50:], (time.monotonic(), int(self.rows[-1]["step"]))]
        return new

    @property
    def step(self) -> int:
        return int(self.rows[-1]["step"]) if self.rows else 0

    def rate(self) -> float | None:
        """Steps per second over the recent polls (or the trainer's own images/s)."""
        if len(self.seen) >= 2 and self.seen[-1][0] - self.seen[0][0] > 0.5:
            (t0, s0), (t1, s1) = self.seen[0], self.seen[-1]
            if s1 > s0:
                return (s1 - s0) / (t1 - t0)
        return None

    def series(self) -> dict[str, list[float]]:
        """``step`` and every numeric column but the throughput, for the curves; a column
        some rows lack (an extractor's scores, logged every few steps) is NaN there."""
        keys = [k for k in self.keys if k not in ("step", "images_per_s", "lr", "size")]
        out = {"step": [int(r["step"]) for r in self.rows]}
        for k in keys:
            out[k] = [float(r.get(k, math.nan)) for r in self.rows]
        return out
