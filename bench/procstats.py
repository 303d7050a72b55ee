"""What the benchmark's processes and the machine spent: CPU time, peak resident memory (from
Linux's /proc), and latency percentiles."""

from __future__ import annotations

import contextlib
import os
import statistics
from collections.abc import Iterator
from pathlib import Path


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (1..99) of ``values``, inclusive method."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _group(pgid: int) -> Iterator[tuple[str, list[str]]]:
    """``(pid, stat fields after the name)`` of the live processes in process group ``pgid``."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            yield entry, fields


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the live processes in process group ``pgid`` (Linux)."""
    ticks = sum(int(fields[11]) + int(fields[12]) for _, fields in _group(pgid))
    return ticks / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int | str = "self") -> float | None:
    """Peak resident memory (VmHWM) of a process in MiB; None where /proc does not say."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def group_peak_rss_mib(pgid: int) -> float | None:
    """The largest peak resident memory among the live processes of group ``pgid``, in MiB."""
    peaks = [p for p in (peak_rss_mib(pid) for pid, _ in _group(pgid)) if p is not None]
    return max(peaks, default=None)


def reset_peak_rss() -> None:
    """Start this process's peak resident memory afresh (Linux's ``clear_refs``), so the next
    :func:`peak_rss_mib` covers what follows; nothing where the kernel does not allow it."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def machine_cpu_seconds() -> float:
    """CPU seconds all processors spent busy since boot (user, nice, system)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:4]
    return sum(int(f) for f in fields) / os.sysconf("SC_CLK_TCK")


def cpu_ticks() -> tuple[int, int]:
    """``(stolen, all)`` CPU ticks since boot across every processor (Linux's /proc/stat):
    stolen is the time a hypervisor gave this machine's CPUs to other guests."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (fields[7] if len(fields) > 7 else 0), sum(fields)


def steal_percent(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of CPU time stolen between two :func:`cpu_ticks` readings, in percent."""
    total = after[1] - before[1]
    return 100 * (after[0] - before[0]) / total if total > 0 else 0.0
