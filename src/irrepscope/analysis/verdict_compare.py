"""Verdicts that set a model beside another: runs compared (which is better, and whether that
exceeds the seed spread), and a pruned run beside its source. The per-model rules are
``analysis.verdict``'s; the seed-spread test is ``analysis.seed_groups``' paired t-test.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from irrepscope.analysis.seed_groups import SeedGroup, compare_groups
from irrepscope.analysis.verdict import (
    DEPENDS_ON_FACTOR,
    Verdict,
    fmt,
    model_rows,
    run_verdict,
)
from irrepscope.train.seed_stats import mean_std


def _mean(group: SeedGroup, key: str) -> float:
    values = [v for v in group.values(key).values() if math.isfinite(v)]
    return mean_std(values)[0] if values else math.nan


def better_sentences(groups: Sequence[SeedGroup], verdict: Verdict) -> None:
    """For each config after the first: which of it and the first has the lower test MSE, and
    whether the difference exceeds the seed spread (or cannot be decided)."""
    first = groups[0]
    for other in groups[1:]:
        a, b = _mean(first, "test_mse"), _mean(other, "test_mse")
        if not (math.isfinite(a) and math.isfinite(b)):
            verdict.unknown.append(f"{first.name} vs {other.name}: a test MSE is missing, so "
                                   f"which is better is not known.")
            continue
        (low, high), (x, y) = ((first, other), (a, b)) if a <= b else ((other, first), (b, a))
        seeds = ("" if len(low.seeds) == len(high.seeds) == 1 else
                 f" (mean over {len(low.seeds)} and {len(high.seeds)} seeds)")
        text = (f"{low.name} has the lower test MSE: {fmt(x)} vs {fmt(y)} eV²{seeds}, "
                f"{fmt(x / y)}× {high.name}'s")
        test, left_out = compare_groups(first, other)
        if test.verdict == "cannot be decided":
            text += (f". Whether this exceeds the seed spread cannot be decided: {test.n} "
                     f"shared seed{'s' if test.n != 1 else ''}, and the paired t-test needs at "
                     f"least 2 (train both with the same --seeds N, N ≥ 2)")
        elif test.verdict == "exceeds seed spread":
            text += (f"; the difference exceeds the seed spread (paired t-test over {test.n} "
                     f"seeds, p = {test.p:.2g} < {test.alpha:g})")
        else:
            text += (f"; the difference is within the seed spread (paired t-test over {test.n} "
                     f"seeds, p = {test.p:.2g} ≥ {test.alpha:g}): these runs do not say which "
                     f"config is better")
        if left_out:
            text += f"; {left_out} shared seed(s) left out (different splits)"
        verdict.sentences.append(text + ".")


def comparison_verdict(names: Sequence[str], summaries: Sequence[Mapping[str, Any]],
                       groups: Sequence[SeedGroup],
                       scales: Sequence[Mapping[int, float] | None]) -> Verdict:
    """Which run (config) is better and by how much beyond the seed spread, then each run's own
    verdict in short (``scales``: each run's relative scales, or None)."""
    verdict = Verdict()
    if len(groups) > 1:
        better_sentences(groups, verdict)
    else:
        verdict.sentences.append(f"All {len(names)} runs are one config ({groups[0].name}) at "
                                 f"different seeds: there is no other config to compare with.")
    for name, summary, scale in zip(names, summaries, scales, strict=True):
        verdict.add_part(name, run_verdict(summary, model_rows(summary), scale,
                                           str(summary.get("run_dir", name))))
    return verdict


def pruned_verdict(record: Mapping[str, Any]) -> Verdict:
    """What pruning did (``pruned_from.json``): orders dropped, parameters and multiply-adds
    removed, test MSE of the original, before and after fine-tuning, against the baseline."""
    verdict = Verdict()
    errors, models = record.get("errors", {}), record.get("models", {})
    original, pruned = models.get("original", {}), models.get("pruned", {})
    dropped = ", ".join(f"l={l}" for l in record.get("dropped_orders", []))
    text = f"Pruned {dropped} from {record.get('source_run', 'the source run')}"
    p0, p1 = original.get("parameters"), pruned.get("parameters")
    if p0 and p1 is not None:
        text += f": {p0 - p1:,} of {p0:,} parameters removed ({(p0 - p1) / p0:.0%})"
        m0, m1 = original.get("multiply_adds_per_batch"), pruned.get("multiply_adds_per_batch")
        if m0 and m1 is not None:
            text += f", {(m0 - m1) / m0:.0%} of the message multiply-adds"
    verdict.sentences.append(text + ".")
    mse0 = _value(errors.get("original"))
    mse_pruned, mse_tuned = _value(errors.get("pruned")), _value(errors.get("fine_tuned"))
    if math.isfinite(mse0) and mse0 > 0:
        parts = [f"test MSE {fmt(mse0)} eV² before pruning"]
        if math.isfinite(mse_pruned):
            parts.append(f"{fmt(mse_pruned)} eV² right after it (×{fmt(mse_pruned / mse0)})")
        epochs = record.get("epochs_trained", 0)
        if epochs and math.isfinite(mse_tuned):
            parts.append(f"{fmt(mse_tuned)} eV² after {epochs} epoch(s) of fine-tuning "
                         f"(×{fmt(mse_tuned / mse0)})")
        text = ", ".join(parts)
        verdict.sentences.append(text[0].upper() + text[1:] + ", on the source's test split.")
        together = mse_pruned / mse0
        if math.isfinite(together) and together >= DEPENDS_ON_FACTOR and not epochs:
            verdict.sentences.append(f"Dropped together the orders cost ×{fmt(together)}, more "
                                     f"than the ×{DEPENDS_ON_FACTOR:g} each was allowed alone: "
                                     f"fine-tune (--epochs N) before using this model.")
    base = _value(record.get("baseline"))
    final = mse_tuned if math.isfinite(mse_tuned) else mse_pruned
    if math.isfinite(base) and base > 0 and math.isfinite(final) and final >= base:
        verdict.warning = True
        verdict.sentences.append(f"The pruned model ({fmt(final)} eV²) does not beat the "
                                 f"composition baseline ({fmt(base)} eV²).")
    verdict.sentences.append("Whether the pruned architecture is as good as the original beyond "
                             "seed-to-seed variation cannot be decided from one run of each.")
    return verdict


def _value(errors: Mapping[str, Any] | None) -> float:
    value = (errors or {}).get("test_mse")
    return math.nan if value is None else float(value)
