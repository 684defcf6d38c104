"""SIGINT / SIGTERM inside ``stop_on_signals`` (real signals sent to this process): at once
outside Lightning, at the next batch boundary inside it; the continue command."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import lightning as L
import pytest

from irrepscope.train.run import train
from irrepscope.train.run_records import load_checkpoint, read_metrics
from irrepscope.train.stopping import Stopped, continue_command, stop_on_signals


def test_a_signal_outside_training_stops_at_once_and_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Stopped) as stopped, stop_on_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(10_000_000):  # the handler runs between two bytecodes
            pass
        raise AssertionError("SIGTERM did not stop the block")
    assert stopped.value.exit_status == 143 and str(stopped.value) == "stopped by SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before


class _Interrupt(L.Callback):
    """Sends SIGINT to this process in the middle of the second epoch."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.current_epoch == 1 and batch_idx == 2:
            os.kill(os.getpid(), signal.SIGINT)


def test_sigint_while_training_finishes_the_batch_and_keeps_the_finished_epoch(tiny_config,
                                                                             tmp_path):
    run = tmp_path / "run"
    with pytest.raises(Stopped) as stopped, stop_on_signals():
        train(tiny_config("train.max_epochs=5"), run, callbacks=[_Interrupt()])
    assert stopped.value.exit_status == 130 and stopped.value.run_dir == run
    assert str(stopped.value) == (f"stopped by SIGINT after epoch 1 of 5 in {run} (last.ckpt "
                                  f"holds it; the unfinished epoch is trained again)")
    assert len(read_metrics(run / "metrics.csv")) == 1
    assert load_checkpoint(run / "last.ckpt")["epoch"] == 0
    assert continue_command(["train", "--config", "c.yaml", "--overwrite"], stopped.value,
                            True) == ["train", "--config", "c.yaml", "--resume"]


def test_continue_command_without_a_checkpoint_is_the_command_itself(tmp_path):
    stopped = Stopped(signal.SIGTERM, "before the first epoch", Path(tmp_path))
    assert continue_command(["train", "--config", "c.yaml"], stopped, True) == \
        ["train", "--config", "c.yaml"]


class _TermInLastValidation(L.Callback):
    """Sends SIGTERM to this process while the last epoch is being validated."""

    def on_validation_batch_end(self, trainer, *args) -> None:
        if trainer.current_epoch == trainer.max_epochs - 1:
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_in_the_last_validation_stops_before_the_test_set(tiny_config, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(Stopped) as stopped, stop_on_signals():
        train(tiny_config(), run, callbacks=[_TermInLastValidation()])
    assert str(stopped.value) == (f"stopped by SIGTERM after all 2 epochs in {run} were "
                                  f"trained, before its test set was evaluated")
    assert load_checkpoint(run / "last.ckpt")["epoch"] == 1
    assert not (run / "test_metrics.json").exists()
