"""From analysis numbers to words: the one place that holds the rules and thresholds by which a
report says that a model "depends on" an order l, that l "carries information", that l is
"switched off", and which orders a pruning would drop. docs/analysis.md ("The verdict") lists
every rule with its threshold.

Depends on: zeroing l in every block multiplies the MSE by at least ``DEPENDS_ON_FACTOR``
(``ablation_rel_mse`` >= factor - 1). An order l > 0 below it is a pruning candidate; it is the
rule of ``irrepscope prune --auto`` (whose default threshold is this one), so the suggested
command drops exactly what ``--auto`` would.

Carries information: the cross-validated ridge probe from l's invariant features reaches
R^2 >= ``INFORMATIVE_R2`` (energy, or NSPS for molecular complexity).

Switched off: the root-mean-square of l's features is below ``SWITCHED_OFF_RELATIVE_SCALE``
times that of the same layer's l=0 features (or, in a layer without l=0, of its largest order).
Training can drive an order's weights towards zero without making its features exactly
constant; probes fitted on such features still report R^2 > 0, which says nothing about the
model, so their numbers are marked as computed on near-zero features.

A number that is n/a gives no sentence about its order; the verdict says what is not known and
why instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# An order whose features are a thousandth of the scalars' or less contributes, through any
# layer of ordinary weights, at most ~1e-3 of what the scalars do: that is "switched off".
SWITCHED_OFF_RELATIVE_SCALE = 1e-3
# Zeroing l costs at least half the model's own MSE: the model depends on l. Below it, dropping l
# alone costs less than half the error (docs/findings.md: at 1.1x nothing is dropped from models
# trained a few epochs, where every order carries more than a tenth of the error).
DEPENDS_ON_FACTOR = 1.5
# Half of the target's variance is explained out of fold by a linear read-out of l's invariants.
INFORMATIVE_R2 = 0.5


def feature_scale(features: np.ndarray) -> float:
    """Root-mean-square of all entries of features [n, d] (the features' unit); 0 if empty."""
    x = np.asarray(features, dtype=np.float64)
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


def relative_scales(per_l: Mapping[int, np.ndarray]) -> dict[int, float]:
    """{l: RMS of l's features / RMS of l=0's (or of the largest order's when l=0 is absent)}.

    NaN for every l when the reference scale is 0 (all features zero: nothing to compare with).
    """
    scales = {l: feature_scale(x) for l, x in per_l.items()}
    if not scales:
        return {}
    reference = scales[0] if 0 in scales else max(scales.values())
    if not reference > 0:
        return {l: float("nan") for l in scales}
    return {l: s / reference for l, s in scales.items()}


def is_switched_off(relative_scale: float) -> bool:
    """Whether an order with this relative scale (``relative_scales``) counts as switched off."""
    return bool(np.isfinite(relative_scale) and relative_scale < SWITCHED_OFF_RELATIVE_SCALE)


def ablation_factor(ablation_rel_mse: float) -> float:
    """MSE with l zeroed / MSE (NaN stays NaN)."""
    return 1.0 + float(ablation_rel_mse)


def depends_on(ablation_rel_mse: float) -> bool:
    """Whether zeroing l multiplies the MSE by at least ``DEPENDS_ON_FACTOR``."""
    return bool(math.isfinite(ablation_rel_mse)
                and ablation_factor(ablation_rel_mse) >= DEPENDS_ON_FACTOR)


def carries_information(r2: float) -> bool:
    """Whether a probe R^2 reaches ``INFORMATIVE_R2``."""
    return bool(math.isfinite(r2) and r2 >= INFORMATIVE_R2)


def prune_threshold() -> float:
    """The ``ablation_rel_mse`` below which an order l > 0 is a pruning candidate."""
    return DEPENDS_ON_FACTOR - 1.0


def model_block(summary: Mapping[str, Any]) -> int:
    """The block whose rows hold the numbers that need the model (ablation): the summary's
    ``model_block`` where the analysis names one (a last layer of scalars only), else its last."""
    return int(summary.get("model_block", summary["last_block"]))


def model_rows(summary: Mapping[str, Any],
               table: Sequence[Mapping[str, Any]] | None = None) -> list[Mapping[str, Any]]:
    """The utilization rows of ``model_block`` (from ``table``, default the summary's)."""
    block = model_block(summary)
    return [r for r in (summary.get("table", []) if table is None else table)
            if r.get("block") == block]


def prune_candidates(rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Orders l > 0 of one block's rows whose finite ablation is below the depends-on rule."""
    return sorted(int(r["l"]) for r in rows if int(r["l"]) > 0
                  and math.isfinite(_num(r.get("ablation_rel_mse")))
                  and not depends_on(_num(r.get("ablation_rel_mse"))))


@dataclass
class Verdict:
    """Sentences with their numbers, most important first; what is not known and why; the
    commands that follow from them."""

    sentences: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    warning: bool = False  # a model does not beat the composition baseline
    parts: list[tuple[str, Verdict]] = field(default_factory=list)  # (run name, its verdict)

    def extend(self, other: Verdict) -> None:
        """Append ``other``'s sentences, unknowns, commands and parts."""
        self.sentences += other.sentences
        self.unknown += other.unknown
        self.commands += other.commands
        self.parts += other.parts
        self.warning = self.warning or other.warning

    def add_part(self, name: str, other: Verdict) -> None:
        """Add ``other`` as the verdict on the run ``name`` (a comparison's runs)."""
        self.parts.append((name, other))
        self.warning = self.warning or other.warning


def _num(value: Any) -> float:
    try:
        return float("nan") if value is None else float(value)
    except (TypeError, ValueError):
        return float("nan")


def fmt(value: float) -> str:
    """A number as the verdict prints it: 3 significant digits."""
    return "n/a" if not math.isfinite(value) else f"{value:.3g}"


def _orders_text(orders: Sequence[int]) -> str:
    """'l=1', 'l=1 and l=2', 'l=1, l=2 and l=3'."""
    names = [f"l={l}" for l in orders]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _listed(pairs: Sequence[tuple[int, str]]) -> str:
    """'l=3 (×36), l=4 (×2.1)'."""
    return ", ".join(f"l={l} ({text})" for l, text in pairs)


def error_sentences(summary: Mapping[str, Any], verdict: Verdict) -> None:
    """Test error against the composition baseline (ratio), or what is not known."""
    mse, base = _num(summary.get("test_mse")), _num(summary.get("baseline_test_mse"))
    name, unit = summary.get("error_name", "Test MSE"), summary.get("error_unit", "eV²")
    if not math.isfinite(mse):
        verdict.unknown.append("The model's error is not known: no predictions with targets "
                               "were given.")
        return
    if not base > 0:
        why = summary.get("baseline_missing") or "no composition baseline for these molecules"
        verdict.sentences.append(f"{name}: {fmt(mse)} {unit}.")
        verdict.unknown.append(f"Whether the model beats counting atoms is not known: {why}.")
        return
    ratio = mse / base
    stated = (f"{name} {fmt(mse)} {unit} is {fmt(ratio)}× the composition baseline's "
              f"{fmt(base)} {unit} (least squares on element counts, "
              f"{summary.get('baseline_scope', 'same split')})")
    if ratio < 1.0:
        verdict.sentences.append(f"{stated}: the model beats counting atoms.")
    else:
        verdict.warning = True
        verdict.sentences.append(
            f"{stated}: the model does not beat counting atoms, so the numbers below describe a "
            f"model that has learned less than its molecular formula.")


def ablation_sentences(rows: Sequence[Mapping[str, Any]], verdict: Verdict,
                       molecules: int | None = None) -> None:
    """Which orders the model depends on, and which cost little when zeroed."""
    factors = {int(r["l"]): ablation_factor(_num(r.get("ablation_rel_mse"))) for r in rows}
    known = {l: f for l, f in factors.items() if math.isfinite(f)}
    missing = sorted(set(factors) - set(known))
    if not known:
        verdict.unknown.append("Which orders the model depends on is not known: the ablation "
                               "needs the model itself, and none was given.")
        return
    if missing:
        verdict.unknown.append(f"{_orders_text(missing)}: no ablation number (n/a), so nothing "
                               f"is said about whether the model depends on "
                               f"{'it' if len(missing) == 1 else 'them'}.")
    sample = f", on {molecules} test molecules" if molecules else ""
    strong = sorted((l for l in known if known[l] >= DEPENDS_ON_FACTOR), key=lambda l: -known[l])
    weak = sorted((l for l in known if known[l] < DEPENDS_ON_FACTOR), key=lambda l: known[l])
    if strong:
        top = strong[0]
        text = (f"The model depends most on l={top}: zeroing it in every block multiplies the "
                f"MSE by {fmt(known[top])}{sample}")
        if len(strong) > 1:
            others = _listed([(l, f"×{fmt(known[l])}") for l in strong[1:]])
            text += f"; it also depends on {others}"
        verdict.sentences.append(text + f" (rule: ×{DEPENDS_ON_FACTOR:g} or more).")
    if weak:
        listed = _listed([(l, f"×{fmt(known[l])}") for l in weak])
        verb = "costs" if len(weak) == 1 else "cost"
        verdict.sentences.append(
            f"Zeroing {listed} {verb} less than ×{DEPENDS_ON_FACTOR:g}: the model barely "
            f"uses {'it' if len(weak) == 1 else 'them'} (each measured alone).")


def probe_sentences(rows: Sequence[Mapping[str, Any]], verdict: Verdict,
                    switched_off: Sequence[int] = ()) -> None:
    """Which orders carry energy and complexity (NSPS) information (probe R²)."""
    for column, what, source in (("probe_r2_energy", "energy", "no energies were given"),
                                 ("probe_r2_nsps", "complexity (NSPS)", "no SMILES, so no NSPS")):
        values = {int(r["l"]): _num(r.get(column)) for r in rows}
        known = {l: v for l, v in values.items() if math.isfinite(v)}
        if not known:
            verdict.unknown.append(f"Which orders carry {what} information is not known: the "
                                   f"probe is n/a ({source}; or fewer than 30 molecules).")
            continue
        informative = sorted((l for l in known if carries_information(known[l])),
                             key=lambda l: -known[l])
        little = sorted(l for l in known if l not in informative)
        r2 = {l: f"R² {fmt(known[l])}" + (", near-zero features" if l in switched_off else "")
              for l in known}
        if informative:
            text = (f"{what[0].upper()}{what[1:]} information is carried by "
                    f"{_listed([(l, r2[l]) for l in informative])}")
            if little:
                text += f", not by {_listed([(l, r2[l]) for l in little])}"
        else:
            text = f"No order carries {what} information: {_listed([(l, r2[l]) for l in little])}"
        verdict.sentences.append(text + f" (ridge probe from the order's invariant features; "
                                        f"rule: R² ≥ {INFORMATIVE_R2:g}).")
        off = sorted(set(switched_off) & set(informative))
        if off:
            verdict.sentences.append(f"The {what} probe of {_orders_text(off)} was fitted on "
                                     f"near-zero features (switched off): it says nothing about "
                                     f"the model.")


def switched_off_sentences(scales: Mapping[int, float], verdict: Verdict) -> list[int]:
    """Orders whose features are switched off (relative scale); returns them."""
    off = sorted(l for l, s in scales.items() if is_switched_off(s))
    rule = f"rule: below {SWITCHED_OFF_RELATIVE_SCALE:g}× the RMS of the layer's l=0 features"
    if off:
        listed = _listed([(l, f"{scales[l]:.1e}× l=0's RMS") for l in off])
        verdict.sentences.append(f"Switched off: {listed} ({rule}).")
    others = {l: s for l, s in scales.items() if l != 0 and math.isfinite(s)}
    if not off and others:
        low = min(others, key=others.get)
        verdict.sentences.append(f"No order is switched off: the smallest features are l={low}'s, "
                                 f"{fmt(others[low])}× the RMS of l=0's ({rule}).")
    return off


def run_verdict(summary: Mapping[str, Any], rows: Sequence[Mapping[str, Any]],
                scales: Mapping[int, float] | None = None,
                run_dir: str | None = None) -> Verdict:
    """The verdict on one analysed model from its summary (``analysis/summary.json``) and its
    last block's utilization rows; ``scales`` ({l: relative scale}) when the rows lack a
    ``relative_scale`` column; ``run_dir`` for the suggested prune command (None: the model is
    not an irrepscope run and cannot be pruned by irrepscope)."""
    verdict = Verdict()
    if not rows:
        verdict.unknown.append("No utilization numbers: nothing can be said about the orders.")
        return verdict
    error_sentences(summary, verdict)
    ablation_sentences(rows, verdict, summary.get("ablation_molecules"))
    row_scales = {int(r["l"]): _num(r["relative_scale"]) for r in rows if "relative_scale" in r}
    off = switched_off_sentences(row_scales or dict(scales or {}), verdict)
    if not row_scales and not scales:
        verdict.unknown.append("Whether an order is switched off is not known: the features' "
                               "scales were not available.")
    probe_sentences(rows, verdict, off)
    suggestion_sentences(rows, summary.get("prune_candidate"), run_dir, verdict)
    return verdict


def suggestion_sentences(rows: Sequence[Mapping[str, Any]], savings: Mapping[str, Any] | None,
                         run_dir: str | None, verdict: Verdict) -> None:
    """The pruning that follows from the ablation, with what it would remove."""
    drop = prune_candidates(rows)
    higher = {int(r["l"]): _num(r.get("ablation_rel_mse")) for r in rows if int(r["l"]) > 0}
    scored = sorted(l for l, value in higher.items() if math.isfinite(value))
    if not scored:  # nothing to say: no ablation, or only l=0 (never dropped)
        return
    if not drop:
        which = "any l > 0" if len(scored) == len(higher) else _orders_text(scored)
        verdict.sentences.append(f"No order is a pruning candidate: zeroing {which} multiplies "
                                 f"the MSE by ×{DEPENDS_ON_FACTOR:g} or more.")
        return
    orders = _orders_text(drop)
    if run_dir is None:
        verdict.sentences.append(f"{orders} could be dropped (rule above); irrepscope prune works "
                                 f"on irrepscope runs only, so retrain this model without "
                                 f"{'it' if len(drop) == 1 else 'them'} to see what it costs.")
        return
    text = f"Dropping {orders} is suggested (each costs less than ×{DEPENDS_ON_FACTOR:g} alone)"
    if savings and list(savings.get("drop", [])) == drop:
        p0, p1 = savings["parameters_before"], savings["parameters_after"]
        m0, m1 = savings["macs_per_molecule_before"], savings["macs_per_molecule_after"]
        text += (f": it would remove {p0 - p1:,} of {p0:,} parameters ({(p0 - p1) / p0:.0%}) "
                 f"and {(m0 - m1) / 1e6:.3g} M of {m0 / 1e6:.3g} M message multiply-adds per "
                 f"molecule ({(m0 - m1) / m0:.0%}, at the test set's mean size)")
    verdict.sentences.append(
        text + "; the orders were zeroed one at a time, so what dropping them together costs "
               "shows in the pruned run's report (error before fine-tuning).")
    verdict.commands.append(f"irrepscope prune {run_dir} --drop {','.join(map(str, drop))} "
                            f"--epochs 1 --out {run_dir.rstrip('/')}_pruned")


def switched_off_notes(table: list[dict[str, Any]]) -> list[str]:
    """One note per block with switched-off orders (``analysis.verdict``): their scales, and that
    their probe numbers are computed on near-zero features."""
    notes = []
    for block in sorted({row["block"] for row in table}):
        off = [row for row in table if row["block"] == block and row["switched_off"]]
        if off:
            orders = ", ".join(f"l={row['l']}" for row in off)
            scales = ", ".join(f"{row['relative_scale']:.2g}" for row in off)
            notes.append(f"Block {block}: {orders} switched off (features' RMS {scales} times "
                         f"the l=0 features', below {SWITCHED_OFF_RELATIVE_SCALE:g}); probe R² "
                         f"and NSPS numbers of {'this order' if len(off) == 1 else 'these orders'}"
                         f" are computed on near-zero features and say nothing about the model.")
    return notes
