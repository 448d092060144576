"""The agent's disk spool: every report is written here first, sent from here, removed on ack.

One file per report, named by its zero-padded sequence number and written atomically (temp file,
fsync, rename), so a crash or power cut leaves either the whole report or nothing. The next
sequence number is kept in ``seq`` (fsync'd before use) so numbering survives restarts.

The spool is bounded by count and bytes. When full, the oldest reports are dropped with a
WARNING that says how many, which sequence numbers, and what to do; the running total of dropped
reports travels in later reports so the NOC knows the gap is a known loss.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.errors import PantauError

log = logging.getLogger("pantau.agent.spool")

_SUFFIX = ".json"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class Spool:
    """A bounded, ordered, crash-safe queue of reports on disk."""

    def __init__(self, directory: Path, max_reports: int = 20000, max_bytes: int = 64 * 1024 * 1024) -> None:
        if max_reports < 1 or max_bytes < 1024:
            raise PantauError("spool bounds must allow at least 1 report and 1 KiB")
        self.dir = directory
        self.rejected_dir = directory / "rejected"
        self.max_reports = max_reports
        self.max_bytes = max_bytes
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.rejected_dir.mkdir(exist_ok=True, mode=0o700)
        except OSError as exc:
            raise PantauError(f"cannot create the agent spool at {self.dir}: {exc}") from exc
        for stale in self.dir.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
        self._files = sorted(p for p in self.dir.iterdir() if p.suffix == _SUFFIX and p.is_file())
        self._bytes = sum(p.stat().st_size for p in self._files)
        self.dropped_total = self._read_int("dropped", 0)
        last = int(self._files[-1].stem) if self._files else 0
        self._next_seq = max(self._read_int("seq", 1), last + 1)

    def _read_int(self, name: str, default: int) -> int:
        try:
            return int((self.dir / name).read_text().strip())
        except (OSError, ValueError):
            return default

    def next_seq(self) -> int:
        """Reserve and durably record the next sequence number."""
        seq = self._next_seq
        self._next_seq += 1
        _atomic_write(self.dir / "seq", str(self._next_seq).encode())
        return seq

    def __len__(self) -> int:
        return len(self._files)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def append(self, report: dict[str, Any]) -> None:
        """Store one report; drop the oldest ones if the bounds are exceeded."""
        data = json.dumps(report, separators=(",", ":")).encode()
        path = self.dir / f"{int(report['seq']):016d}{_SUFFIX}"
        _atomic_write(path, data)
        self._files.append(path)
        self._bytes += len(data)
        self._enforce_bounds()

    def _enforce_bounds(self) -> None:
        dropped: list[int] = []
        while len(self._files) > 1 and (len(self._files) > self.max_reports or self._bytes > self.max_bytes):
            oldest = self._files.pop(0)
            try:
                self._bytes -= oldest.stat().st_size
                oldest.unlink()
            except OSError:
                pass
            dropped.append(int(oldest.stem))
        if dropped:
            self.dropped_total += len(dropped)
            _atomic_write(self.dir / "dropped", str(self.dropped_total).encode())
            log.warning(
                "spool full (%d reports / %d bytes allowed at %s): dropped %d oldest report(s), seq %d..%d; "
                "the NOC has not acknowledged reports for a long time: check the NOC address, token and "
                "network, or raise --spool-max-reports/--spool-max-bytes",
                self.max_reports, self.max_bytes, self.dir, len(dropped), dropped[0], dropped[-1],
            )

    def oldest(self, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` oldest reports, in sequence order; unreadable files are set aside."""
        out: list[dict[str, Any]] = []
        for path in list(self._files[: limit * 2]):
            if len(out) >= limit:
                break
            try:
                out.append(json.loads(path.read_bytes()))
            except (OSError, ValueError):
                log.error("spooled report %s is unreadable; moved to %s", path.name, self.rejected_dir)
                self._set_aside(path)
        return out

    def _set_aside(self, path: Path) -> None:
        try:
            size = path.stat().st_size
            os.replace(path, self.rejected_dir / path.name)
            self._bytes -= size
        except OSError:
            pass
        if path in self._files:
            self._files.remove(path)

    def remove(self, seqs: Iterator[int] | list[int]) -> None:
        """Forget reports the NOC has acknowledged."""
        wanted = set(seqs)
        keep = []
        for path in self._files:
            if int(path.stem) in wanted:
                try:
                    self._bytes -= path.stat().st_size
                    path.unlink()
                except OSError:
                    pass
            else:
                keep.append(path)
        self._files = keep

    def reject(self, seq: int) -> None:
        """Move a report the NOC refused for good out of the queue, keeping it for inspection."""
        for path in self._files:
            if int(path.stem) == seq:
                self._set_aside(path)
                return
