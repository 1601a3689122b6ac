"""Resident memory of this process, read from /proc (what the speed benchmarks report as peak
memory): shared by ``speed.py`` and ``cnn_contest.py``."""

from __future__ import annotations

__all__ = ["reset_peak_rss", "rss_bytes"]


def rss_bytes() -> tuple[int, int]:
    """(current RSS, peak RSS since the last reset) of this process, from /proc."""
    cur = peak = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                cur = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) * 1024
    return cur, peak


def reset_peak_rss() -> bool:
    """Start the peak (VmHWM) afresh; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
