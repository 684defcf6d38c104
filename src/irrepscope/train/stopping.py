"""Stopping a long command cleanly on SIGTERM (a scheduler's time limit or preemption) or SIGINT
(Ctrl+C), with a non-zero exit status and the command that continues it.

Every CLI command runs inside ``stop_on_signals()``. A signal then stops the command in one of
two ways:

- while Lightning trains or tests (``stop_callback.StopAtBatchEnd`` defers signals there, in
  place of Lightning's SIGTERM handler, whose collective inside the handler hangs DDP), it is
  only recorded; at the end of the current training batch (or when the next epoch starts) every
  process learns of it through one all-reduce and all stop together; the unfinished epoch is
  abandoned. ``last.ckpt`` already holds the last finished epoch (it is committed at the end of
  every epoch), so nothing has to be written after the signal and ``--resume`` continues
  exactly. A signal during the test set's evaluation stops the run after it;
- anywhere else (processing data, measuring, analysing, writing reports) it stops the command
  at once, as Ctrl+C stops Python; every writer removes its temporary file
  (``irrepscope.files``), so earlier files stay intact.

Either way ``Stopped`` is raised (a ``BaseException``, like ``KeyboardInterrupt``, so that no
``except Exception`` swallows it); the CLI prints one line and exits with 128 + the signal
number: 143 for SIGTERM, 130 for SIGINT (the shell's convention for a process ended by that
signal). A second signal stops at once. Lightning's own handling alone would end the process
with status 0 (``SIGTERMException`` is a ``SystemExit`` without a code), which a scheduler reads
as success; ``train.run.train`` turns it into ``Stopped`` even without ``stop_on_signals``.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(BaseException):
    """A command stopped by a signal: ``signum``, ``where`` it stopped (text, may be empty), the
    run directory it was training (None outside training), and whether this is the main process
    (the one that reports it; other processes of a distributed run stop with it)."""

    def __init__(self, signum: int, where: str = "", run_dir: Path | None = None,
                 main: bool = True) -> None:
        super().__init__(signum, where)
        self.signum, self.where, self.run_dir, self.main = int(signum), where, run_dir, main

    @property
    def signal_name(self) -> str:
        """'SIGTERM', 'SIGINT', ..."""
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        """128 + the signal number (143 for SIGTERM, 130 for SIGINT)."""
        return 128 + self.signum

    def __str__(self) -> str:
        return f"stopped by {self.signal_name}" + (f" {self.where}" if self.where else "")


class _State:
    """The signal received inside ``stop_on_signals`` (None: none yet); whether handlers are
    installed, and whether a stop waits for a batch boundary."""

    received: int | None = None
    active = False
    deferred = False


def _handler(signum: int, frame: FrameType | None) -> None:
    """Record the signal; stop now unless a stop waits for a batch boundary (a second signal
    always stops now)."""
    first = _State.received is None
    if first:
        _State.received = signum
    if not (first and _State.deferred):
        raise Stopped(_State.received or signum)


def received_signal() -> int | None:
    """The signal received since ``stop_on_signals`` began, or None."""
    return _State.received


def defer_signals(on: bool) -> bool:
    """While ``on``, a signal is only recorded (``received_signal``), and this module's handlers
    replace any other SIGTERM/SIGINT handler (Lightning's); returns False when
    ``stop_on_signals`` is not active (nothing is changed)."""
    if not _State.active or threading.current_thread() is not threading.main_thread():
        return False
    _State.deferred = on
    if on:
        for signum in SIGNALS:
            signal.signal(signum, _handler)
    return True


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Stop on SIGTERM and SIGINT inside the block (see the module text); the previous handlers
    come back afterwards. Outside the main thread (where no handler can be set) it does
    nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    _State.received, _State.active, _State.deferred = None, True, False
    for signum in SIGNALS:
        signal.signal(signum, _handler)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _State.received, _State.active, _State.deferred = None, False, False


def raise_if_signalled(where: str = "", run_dir: Path | None = None) -> None:
    """``Stopped`` when a signal was recorded (while a stop waited for a batch boundary)."""
    if _State.received is not None:
        raise Stopped(_State.received, where, run_dir)


def stopped_in_training(run_dir: Path, max_epochs: int, signum: int | None = None,
                        main: bool = True) -> Stopped:
    """The ``Stopped`` of a run stopped while training or testing by ``signum`` (None: the one
    received, else SIGTERM): where the run stands (the epochs finished, kept in last.ckpt and
    metrics.csv)."""
    from irrepscope.train.run_records import METRICS_FILE, read_metrics

    done = len(read_metrics(run_dir / METRICS_FILE))
    if done >= max_epochs:
        where = (f"after all {done} epochs in {run_dir} were trained, before its test set was "
                 f"evaluated")
    elif done > 0:
        where = (f"after epoch {done} of {max_epochs} in {run_dir} (last.ckpt holds it; the "
                 f"unfinished epoch is trained again)")
    else:
        where = f"before the first epoch of {run_dir} finished (the run starts over)"
    return Stopped(signum or _State.received or signal.SIGTERM, where, run_dir, main)


# Commands that continue a stopped run with --resume; the others by running them again.
RESUME_FLAG = ("train", "prune")
RESUMING = ("train", "prune", "sweep", "demo")


def stopped_line(stopped: Stopped, command: str, argv: list[str]) -> str:
    """The one line a stopped CLI ``command`` (typed as ``argv``) prints: what stopped it,
    where, and the command line that goes on."""
    again = continue_command(argv, stopped, command in RESUME_FLAG)
    verb = "continue with" if command in RESUMING else "run again with"
    return f"irrepscope: {stopped}; {verb}: {shlex.join(['irrepscope', *again])}"


def continue_command(argv: list[str], stopped: Stopped, resume_flag: bool) -> list[str]:
    """The command line that continues a stopped command: ``argv`` as typed, with ``--resume``
    added (and ``--overwrite`` left out) when ``resume_flag`` and the run it was training has a
    ``last.ckpt`` to resume from."""
    resumable = stopped.run_dir is not None and (Path(stopped.run_dir) / "last.ckpt").exists()
    if not (resume_flag and resumable):
        return list(argv)
    return [a for a in argv if a != "--overwrite"] + ([] if "--resume" in argv else ["--resume"])
