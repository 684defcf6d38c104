"""A small parallel runner of ``irrepscope`` command lines with dependencies between them.

Each ``Job`` is one CLI invocation (``python -m irrepscope.cli ARGS`` with this interpreter, so
the same installation runs every step) writing its output and error to ``logs/<name>.log``.
A job starts when all the jobs it depends on succeeded; a job whose ``done`` file exists is not
run again (an interrupted campaign is continued by running it again); a job whose dependency
failed is not started and is counted as blocked. ``args`` may be a function, called only when
the job starts, for command lines that depend on what earlier jobs wrote.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from irrepscope.errors import IrrepscopeError

Args = Sequence[str] | Callable[[], Sequence[str]]


@dataclass
class Job:
    """One CLI invocation: unique ``name``, its arguments, the jobs it needs, its done file."""

    name: str
    args: Args
    done: Path
    deps: tuple[str, ...] = ()

    def command(self) -> list[str]:
        """The arguments after ``irrepscope`` (calls ``args`` when it is a function)."""
        return [str(a) for a in (self.args() if callable(self.args) else self.args)]


@dataclass
class Outcome:
    """What happened to every job: name lists per state and seconds per job that ran."""

    finished: list[str] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # name -> log file
    blocked: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """One line of counts, naming the failed jobs and their logs."""
        text = (f"{len(self.finished)} job(s) run, {len(self.already_done)} already done, "
                f"{len(self.failed)} failed, {len(self.blocked)} not started (a job they need "
                f"failed)")
        if self.failed:
            text += "; failed: " + ", ".join(f"{n} (log {p})" for n, p in self.failed.items())
        return text


def shown(args: Sequence[str]) -> str:
    """The command as a user types it: ``irrepscope ARGS`` (shell-quoted)."""
    return "irrepscope " + " ".join(shlex.quote(a) for a in args)


def check_jobs(jobs: Sequence[Job]) -> None:
    """Raise ``IrrepscopeError`` for duplicate names or dependencies on unknown jobs."""
    names = [job.name for job in jobs]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise IrrepscopeError(f"jobs listed twice: {', '.join(duplicated)}")
    unknown = sorted({d for job in jobs for d in job.deps if d not in names})
    if unknown:
        raise IrrepscopeError(f"jobs depend on jobs that are not in the plan: {', '.join(unknown)}")


def _log_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".log"


def _run_one(job: Job, log_dir: Path, env: dict[str, str], commands: Path) -> tuple[int, float]:
    """Run one job, appending its command line to ``commands``; (exit status, seconds)."""
    args = job.command()
    with open(commands, "a") as handle:
        handle.write(f"{shown(args)}\n")
    start = time.perf_counter()
    with open(log_dir / _log_name(job.name), "w") as log:
        log.write(f"$ {shown(args)}\n")
        log.flush()
        status = subprocess.run([sys.executable, "-m", "irrepscope.cli", *args], stdout=log,
                                stderr=subprocess.STDOUT, env=env, check=False).returncode
    return status, time.perf_counter() - start


def run_jobs(jobs: Sequence[Job], out: Path, parallel: int = 1, threads: int = 1,
             announce: Callable[[str], None] = print) -> Outcome:
    """Run ``jobs`` (``parallel`` at a time, ``threads`` torch threads each) under ``out``.

    Logs go to ``out/logs``; every command run is appended to ``out/commands.txt``.
    """
    check_jobs(jobs)
    log_dir = out / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    outcome = Outcome()
    pending = {job.name: job for job in jobs}
    good: set[str] = set()
    running: dict[Future, Job] = {}
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        while pending or running:
            before = len(pending)
            for name, job in list(pending.items()):
                if any(d in outcome.failed or d in outcome.blocked for d in job.deps):
                    outcome.blocked.append(pending.pop(name).name)
                elif job.done.exists():
                    outcome.already_done.append(name)
                    good.add(pending.pop(name).name)
                elif all(d in good for d in job.deps) and len(running) < max(1, parallel):
                    running[pool.submit(_run_one, job, log_dir, env,
                                        out / "commands.txt")] = pending.pop(name)
                    announce(f"started {name}")
            if not running:
                if len(pending) == before and pending:
                    raise IrrepscopeError(f"jobs wait on each other in a circle: "
                                          f"{', '.join(sorted(pending))}")
                continue
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                job = running.pop(future)
                try:
                    status, seconds = future.result()
                except Exception as err:  # a command line that could not be built
                    status, seconds = 1, 0.0
                    with open(log_dir / _log_name(job.name), "a") as log:
                        log.write(f"irrepscope findings: could not start: {err}\n")
                outcome.seconds[job.name] = seconds
                if status == 0 and job.done.exists():
                    outcome.finished.append(job.name)
                    good.add(job.name)
                    announce(f"finished {job.name} ({seconds:.0f} s)")
                else:
                    outcome.failed[job.name] = str(log_dir / _log_name(job.name))
                    announce(f"FAILED {job.name} (exit status {status}; log "
                             f"{log_dir / _log_name(job.name)})")
    return outcome
