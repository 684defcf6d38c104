"""The verdict rules: relative feature scales and the switched-off threshold."""

from __future__ import annotations

import numpy as np

from irrepscope.analysis import verdict as v


def test_relative_scales_against_scalars() -> None:
    rng = np.random.default_rng(0)
    per_l = {0: 3e-2 * rng.normal(size=(200, 16)), 1: 1e-12 * rng.normal(size=(200, 48)),
             2: 3e-2 * rng.normal(size=(200, 80))}
    rel = v.relative_scales(per_l)
    assert rel[0] == 1.0
    assert 1e-11 < rel[1] < 1e-10
    assert 0.8 < rel[2] < 1.25
    assert v.is_switched_off(rel[1]) and not v.is_switched_off(rel[2])


def test_relative_scales_without_scalars_and_all_zero() -> None:
    per_l = {1: np.full((5, 3), 2.0), 2: np.full((5, 5), 1e-4)}
    assert v.relative_scales(per_l) == {1: 1.0, 2: 5e-5}
    zero = v.relative_scales({0: np.zeros((4, 2)), 1: np.zeros((4, 3))})
    assert all(np.isnan(x) for x in zero.values())
    assert not v.is_switched_off(zero[1])


def test_threshold_boundary() -> None:
    assert v.is_switched_off(0.999 * v.SWITCHED_OFF_RELATIVE_SCALE)
    assert not v.is_switched_off(v.SWITCHED_OFF_RELATIVE_SCALE)


def _rows(ablation: dict, energy: dict | None = None, nsps: dict | None = None) -> list[dict]:
    return [{"block": 4, "l": l, "ablation_rel_mse": a,
             "probe_r2_energy": (energy or {}).get(l, float("nan")),
             "probe_r2_nsps": (nsps or {}).get(l, float("nan"))} for l, a in ablation.items()]


SUMMARY = {"test_mse": 0.129, "baseline_test_mse": 1.22, "ablation_molecules": 128,
           "prune_candidate": {"drop": [5, 6], "parameters_before": 200_000,
                               "parameters_after": 150_000, "macs_per_molecule_before": 4e6,
                               "macs_per_molecule_after": 3e6, "molecules": 1200}}


def test_run_verdict_states_each_rule_with_its_number() -> None:
    rows = _rows({0: 11.0, 3: 35.0, 4: 1.2, 5: 0.3, 6: 0.05},
                 energy={0: 0.93, 3: 0.61, 4: 0.2, 5: 0.1, 6: 0.02}, nsps={0: 0.7, 3: 0.1})
    verdict = v.run_verdict(SUMMARY, rows, {0: 1.0, 3: 0.5, 4: 0.4, 5: 0.2, 6: 2e-4}, "runs/x")
    text = "\n".join(verdict.sentences)
    assert verdict.sentences[0].startswith("Test MSE 0.129 eV² is 0.106× the composition "
                                           "baseline's 1.22 eV² (least squares on element "
                                           "counts, same split)")
    in_sample = v.run_verdict({**SUMMARY, "baseline_scope": "fitted on these molecules"}, rows,
                              {}, None)
    assert "(least squares on element counts, fitted on these molecules)" in (
        in_sample.sentences[0])
    assert not verdict.warning
    assert ("The model depends most on l=3: zeroing it in every block multiplies the MSE by 36, "
            "on 128 test molecules; it also depends on l=0 (×12), l=4 (×2.2)") in text
    assert "Zeroing l=6 (×1.05), l=5 (×1.3) cost less than ×1.5" in text
    assert "Switched off: l=6 (2.0e-04× l=0's RMS)" in text
    assert ("Energy information is carried by l=0 (R² 0.93), l=3 (R² 0.61), not by l=4 (R² 0.2), "
            "l=5 (R² 0.1), l=6 (R² 0.02, near-zero features)") in text
    assert "The energy probe of" not in text  # l=6 is switched off but carries nothing anyway
    assert "50,000 of 200,000 parameters (25%) and 1 M of 4 M message multiply-adds" in text
    assert verdict.commands == ["irrepscope prune runs/x --drop 5,6 --epochs 1 --out "
                                "runs/x_pruned"]
    # a relative_scale column in the rows wins over the scales given beside them
    with_column = [dict(r, relative_scale=1.0) for r in rows]
    assert "Switched off" not in "\n".join(v.run_verdict(SUMMARY, with_column, {6: 1e-9}).sentences)


def test_the_suggestion_is_what_prune_auto_drops() -> None:
    from irrepscope.pruning.orders import AUTO_THRESHOLD, apply_rule

    numbers = {0: 0.1, 1: 0.49, 2: 0.5, 3: float("nan"), 4: -0.2}
    assert v.prune_candidates(_rows(numbers)) == apply_rule(numbers, AUTO_THRESHOLD) == [1, 4]


def test_worse_than_baseline_and_missing_numbers() -> None:
    rows = _rows({0: 2.0, 1: float("nan"), 2: 0.9})
    verdict = v.run_verdict({"test_mse": 3.0, "baseline_test_mse": 1.5}, rows, None, "r")
    assert verdict.warning and "does not beat counting atoms" in verdict.sentences[0]
    text = "\n".join(verdict.sentences)
    assert "l=1" not in text  # no number, no sentence: the unknown list says why
    assert any(u.startswith("l=1: no ablation number (n/a)") for u in verdict.unknown)
    assert any("switched off is not known" in u for u in verdict.unknown)
    assert "No order is a pruning candidate: zeroing l=2 multiplies" in text  # l=1 unscored


def test_features_without_targets_or_model() -> None:
    """A features file: no error ratio, no ablation; what is not known is said."""
    rows = _rows({0: float("nan"), 1: float("nan")}, energy={0: float("nan")})
    verdict = v.run_verdict({"baseline_missing": "a features file has no element counts"},
                            rows, {0: 1.0, 1: 0.3}, None)
    assert not verdict.commands and not verdict.warning
    unknown = "\n".join(verdict.unknown)
    assert "error is not known" in unknown and "ablation needs the model" in unknown
    assert "carry energy information is not known" in unknown


def test_one_order_and_eleven_orders() -> None:
    one = v.run_verdict(SUMMARY, _rows({0: 4.0}, energy={0: 0.9}), {0: 1.0}, "r")
    assert "The model depends most on l=0" in "\n".join(one.sentences)
    assert "pruning" not in "\n".join(one.sentences) and not one.commands
    many = {l: (0.01 * l if l % 2 else 2.0) for l in range(11)}
    eleven = v.run_verdict(SUMMARY, _rows(many), {l: 1.0 for l in range(11)}, "r")
    assert eleven.commands[0].startswith("irrepscope prune r --drop 1,3,5,7,9 ")
    assert "No order is switched off: the smallest features are l=1's, 1×" in "\n".join(
        eleven.sentences)
    # the savings were computed for another set of orders: they are not claimed for this one
    assert "parameters" not in "\n".join(eleven.sentences)


def test_comparison_says_what_the_seeds_support(tmp_path) -> None:
    from irrepscope.analysis.seed_groups import SeedGroup
    from irrepscope.analysis.verdict_compare import better_sentences

    def group(name: str, mse: dict) -> SeedGroup:
        g = SeedGroup(None, [f"{name}_s{s}" for s in mse], [{"test_mse": m} for m in mse.values()],
                      list(mse), [0] * len(mse))
        return g

    one = v.Verdict()
    better_sentences([group("a", {1: 0.13}), group("b", {1: 0.15})], one)
    assert one.sentences[0].startswith("a_s1 has the lower test MSE: 0.13 vs 0.15 eV²")
    assert "cannot be decided: 1 shared seed" in one.sentences[0]
    clear, spread = v.Verdict(), v.Verdict()
    better_sentences([group("a", {1: 0.20, 2: 0.21, 3: 0.22}),
                      group("b", {1: 0.10, 2: 0.115, 3: 0.12})], clear)
    assert "exceeds the seed spread (paired t-test over 3 seeds" in clear.sentences[0]
    better_sentences([group("a", {1: 0.10, 2: 0.20, 3: 0.15}),
                      group("b", {1: 0.16, 2: 0.12, 3: 0.14})], spread)
    assert "within the seed spread" in spread.sentences[0]


def test_pruned_verdict() -> None:
    from irrepscope.analysis.verdict_compare import pruned_verdict

    record = {"dropped_orders": [5, 6], "source_run": "runs/a", "epochs_trained": 0,
              "models": {"original": {"parameters": 1000, "multiply_adds_per_batch": 4e6},
                         "pruned": {"parameters": 600, "multiply_adds_per_batch": 1e6}},
              "errors": {"original": {"test_mse": 0.1}, "pruned": {"test_mse": 0.3}},
              "baseline": {"test_mse": 1.2}}
    text = "\n".join(pruned_verdict(record).sentences)
    assert "Pruned l=5, l=6 from runs/a: 400 of 1,000 parameters removed (40%), 75% of" in text
    assert "0.3 eV² right after it (×3)" in text and "fine-tune (--epochs N)" in text
