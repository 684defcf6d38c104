"""--init-from: matching weights loaded, the rest reported, other shapes refused, resume safe."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from irrepscope.cli import main
from irrepscope.errors import ConfigError, RunDirError
from irrepscope.model.gnn import build_model
from irrepscope.train.init_from import INIT_FILE, describe_init, plan_init, prepare_init
from irrepscope.train.module import model_state_dict
from irrepscope.train.run import load_trained_model, train
from irrepscope.train.run_records import load_checkpoint

REFERENCES = ["reference.element_energy", "reference.energy_scale"]
# A fine-tuning recipe that differs from the source's (lr, schedule, references, epochs).
FINE_TUNE = ("train.max_epochs=1", "train.lr=0.0005", "train.lr_schedule=warmup_cosine",
             "train.warmup_steps=2", "model.energy_reference=element_least_squares")


def _source_state(run: Path) -> dict[str, torch.Tensor]:
    return model_state_dict(load_checkpoint(run / "best.ckpt"))


def test_plan_sorts_every_tensor() -> None:
    source = {"a": torch.zeros(2), "b": torch.zeros(3), "gone": torch.zeros(1),
              "reference.energy_scale": torch.zeros(())}
    target = {"a": torch.ones(2), "b": torch.ones(4), "head.new": torch.ones(5),
              "reference.energy_scale": torch.ones(())}
    plan = plan_init(source, target)
    assert plan.loaded == ["a"]
    assert plan.shape_mismatch == [{"name": "b", "source_shape": [3], "target_shape": [4]}]
    assert plan.new_in_target == ["head.new"]
    assert plan.unused_from_source == ["gone"]
    assert plan.refitted == ["reference.energy_scale"]
    assert plan.not_loaded == ["head.new", "reference.energy_scale", "b"]


def test_loads_every_matching_tensor(tiny_run: Path, tiny_config) -> None:
    config = tiny_config(*FINE_TUNE)
    model = build_model(config.model)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    source = prepare_init(tiny_run, model, config.model.to_dict())
    record = source.apply(model)
    state, src = model.state_dict(), _source_state(tiny_run)
    expected = [k for k in state if k not in REFERENCES]
    assert record["loaded"] == expected and record["refitted"] == REFERENCES
    assert record["new_in_target"] == [] and record["shape_mismatch"] == []
    assert record["checkpoint"] == "best.ckpt" and record["run_dir"] == str(tiny_run.resolve())
    for name in expected:
        torch.testing.assert_close(state[name], src[name].to(state[name].dtype), rtol=0, atol=0)
    changed = [k for k in expected if fresh[k].numel() and not torch.equal(fresh[k], state[k])]
    assert changed, "the source weights equal a fresh model's: nothing was really loaded"
    assert record["parameters_loaded"] == record["parameters_total"] == sum(
        p.numel() for p in model.parameters())


def test_training_starts_from_the_source(tiny_run: Path, tiny_config, tmp_path: Path) -> None:
    """With a vanishing lr the run's weights stay the source's; references are refitted."""
    config = tiny_config(*FINE_TUNE, "train.lr=1e-12", "train.weight_decay=0",
                         "train.lr_schedule=constant", "train.warmup_steps=0",
                         "train.limit_train_batches=1")
    run = train(config, tmp_path / "ft", init_from=tiny_run)
    record = json.loads((run / INIT_FILE).read_text())
    assert record["source"] == str((tiny_run / "best.ckpt").resolve())
    tuned, _ = load_trained_model(run, "last")
    src = _source_state(tiny_run)
    for name in record["loaded"]:
        torch.testing.assert_close(tuned.state_dict()[name], src[name], rtol=0, atol=1e-7)
    baseline = json.loads((run / "baseline.json").read_text())
    fitted = {int(k.split("Z=")[1].rstrip(")")): v
              for k, v in baseline["element_energies_ev"].items()}
    for z, energy in fitted.items():  # the new run's own least-squares fit, not the source's
        assert float(tuned.reference.element_energy[z]) == pytest.approx(energy, rel=1e-5)
    assert json.loads((run / "test_metrics.json").read_text())["init_from"] == record["source"]
    assert "initialised from" in describe_init(record)


def test_refuses_other_shapes_naming_them(tiny_run: Path, tiny_config, tmp_path: Path) -> None:
    config = tiny_config("model.orders=[0, 1]", "train.max_epochs=1")
    with pytest.raises(ConfigError) as err:
        train(config, tmp_path / "other", init_from=tiny_run)
    message = str(err.value)
    expected = build_model(config.model).state_dict()
    source = _source_state(tiny_run)
    mismatched = [k for k in expected if k in source and source[k].shape != expected[k].shape]
    assert mismatched
    for name in mismatched:
        shapes = (f"{name} (source [{', '.join(map(str, source[name].shape))}], this model "
                  f"[{', '.join(map(str, expected[name].shape))}])")
        assert shapes in message
    assert "model.orders ([0, 1, 2] in the source, [0, 1] here)" in message
    assert "--init-partial" in message
    assert not (tmp_path / "other").exists(), "a refused run must write nothing"


def test_partial_skips_other_shapes(tiny_run: Path, tiny_config, tmp_path: Path) -> None:
    config = tiny_config("model.orders=[0, 1]", "train.max_epochs=1")
    run = train(config, tmp_path / "partial", init_from=tiny_run, init_partial=True)
    record = json.loads((run / INIT_FILE).read_text())
    assert record["partial"] and record["shape_mismatch"]
    assert {m["name"] for m in record["shape_mismatch"]}.isdisjoint(record["loaded"])
    assert "embedding.weight" in record["loaded"]
    assert record["parameters_loaded"] < record["parameters_total"]


def test_resume_does_not_reapply(tiny_run: Path, tiny_config, tmp_path: Path) -> None:
    source = tmp_path / "source.ckpt"
    shutil.copy(tiny_run / "best.ckpt", source)
    run = train(tiny_config(*FINE_TUNE), tmp_path / "ft", init_from=source)
    source.unlink()  # a resume that re-read the source would fail now
    train(tiny_config(*FINE_TUNE[1:], "train.max_epochs=2"), run, resume=True)
    assert json.loads((run / "test_metrics.json").read_text())["epochs_trained"] == 2
    with pytest.raises(ConfigError, match="cannot resume .* with --init-from"):
        train(tiny_config(*FINE_TUNE[1:], "train.max_epochs=3"), run, resume=True,
              init_from=tiny_run)


def test_missing_source_is_one_error(tiny_config, tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="does not exist"):
        train(tiny_config(), tmp_path / "run", init_from=tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match="holds no best.ckpt"):
        train(tiny_config(), tmp_path / "run", init_from=tmp_path / "empty")
    assert not (tmp_path / "run").exists()


def test_cli_reports_a_refused_init(tiny_run: Path, tiny_settings: dict, tmp_path: Path,
                                    capsys: pytest.CaptureFixture) -> None:
    import yaml

    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(tiny_settings))
    code = main(["train", "--config", str(config), "--set", "model.hidden=5",
                 "--run-dir", str(tmp_path / "r"), "--init-from", str(tiny_run)])
    err = capsys.readouterr().err
    assert code == 2 and "tensor(s) have other shapes" in err and "model.hidden (4" in err
