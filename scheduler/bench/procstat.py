"""CPU seconds and peak resident memory of a process, from /proc.

`/proc/PID/stat` fields 14 and 15 (utime, stime) are in clock ticks; the process name (field 2)
may contain spaces and parentheses, so the fields are counted from the last ')'. Peak RSS is
`VmHWM` in `/proc/PID/status` (kB), the high-water mark the kernel keeps for the process's
whole life. Both read the process itself, not its children: every process the benchmark
measures (berth, kube-scheduler, the null binder, kube-apiserver) is started directly.
The whole machine's busy time (/proc/stat) shows how much CPU went to anything else: on a
shared machine another workload can slow a run down, and the report says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class CpuTimes:
    user_s: float
    system_s: float

    @property
    def total_s(self) -> float:
        return self.user_s + self.system_s


def parse_stat(text: str, ticks: int = CLOCK_TICKS) -> CpuTimes:
    """CPU times from the contents of /proc/PID/stat."""
    fields = text.rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return CpuTimes(user_s=int(fields[11]) / ticks, system_s=int(fields[12]) / ticks)


def parse_vm_hwm_mb(text: str) -> float | None:
    """Peak RSS in MiB from the contents of /proc/PID/status; None when absent (a zombie)."""
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            parts = line.split()
            return int(parts[1]) / 1024.0  # kB
    return None


def parse_machine_busy(text: str, ticks: int = CLOCK_TICKS) -> float:
    """Busy CPU seconds of the whole machine (all CPUs) from the contents of /proc/stat:
    user + nice + system + irq + softirq + steal of the aggregate `cpu` line."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
            return (user + nice + system + irq + softirq + steal) / ticks
    raise ValueError("no aggregate cpu line in /proc/stat")


def machine_busy_seconds() -> float | None:
    """Busy CPU seconds of the whole machine so far; None where /proc/stat is missing."""
    try:
        with open("/proc/stat") as f:
            return parse_machine_busy(f.read())
    except (FileNotFoundError, ValueError):
        return None


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a live process; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return parse_stat(f.read()).total_s
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None


def max_rss_mb(pid: int) -> float | None:
    """Peak RSS (VmHWM) of a live process in MiB; None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return parse_vm_hwm_mb(f.read())
    except (FileNotFoundError, ProcessLookupError):
        return None
