"""Text every layer prints: Markdown tables and a one-line description of the machine.

The bottom floor of the package (it imports nothing from irrepscope), so that benchmarks,
spherical-harmonics checks, analysis and pruning reports share it without importing upward.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_description() -> str:
    """One line naming the CPU, core count, memory, GPU and library versions."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    threads = torch.get_num_threads()
    return (f"{cpu}, {os.cpu_count()} cores{mem}, {gpu}; torch {torch.__version__}, "
            f"{threads} torch thread{'' if threads == 1 else 's'}")
