"""Mean ± std over seeds and the paired t-test, on synthetic numbers with known answers."""

from __future__ import annotations

import math

import pytest

from irrepscope.train.seed_stats import (
    format_mean_std,
    format_per_seed,
    mean_std,
    paired_t_test,
)


def test_mean_std_is_the_sample_std() -> None:
    assert mean_std([1.0, 2.0, 3.0, 4.0]) == pytest.approx((2.5, math.sqrt(5 / 3)))
    mean, std = mean_std([7.0])
    assert mean == 7.0 and math.isnan(std)
    assert all(math.isnan(v) for v in mean_std([]))


def test_formatting() -> None:
    assert format_mean_std([1.0, 2.0, 3.0]) == "2 ± 1"
    assert format_mean_std([0.123456]) == "0.1235"  # one seed: the value alone
    assert format_mean_std([1.0, None]) == "n/a" and format_mean_std([]) == "n/a"
    assert format_mean_std([1.0, math.nan]) == "n/a"
    assert format_per_seed({7: 0.5, 3: 0.25}) == "3: 0.25, 7: 0.5"


def test_two_degrees_of_freedom_against_the_closed_form() -> None:
    """d = (1, 2, 3): mean 2, std 1, t = 2√3; Student's t with 2 df has CDF
    1/2 + t / (2√(t² + 2)), so the two-sided p is 1 - t/√(t² + 2) = 0.0742 > 0.05."""
    test = paired_t_test({1: 2.0, 2: 3.0, 3: 4.0}, {1: 1.0, 2: 1.0, 3: 1.0})
    t = 2 * math.sqrt(3)
    assert test.seeds == (1, 2, 3) and test.n == 3 and test.df == 2
    assert test.mean == pytest.approx(2.0) and test.std == pytest.approx(1.0)
    assert test.t == pytest.approx(t)
    assert test.p == pytest.approx(1 - t / math.sqrt(t * t + 2), rel=1e-9)
    assert test.verdict == "within seed spread"
    text = test.statement("A", "B")
    assert "paired t-test" in text and "n=3" in text and "p=0.0742" in text
    assert "mean 2 eV²" in text and "std 1 eV²" in text and "within seed spread (p ≥ 0.05)" in text


def test_one_degree_of_freedom_against_the_closed_form() -> None:
    """d = (1.0, 1.2): t = 1.1 / (0.1414 / √2) = 11; Cauchy: p = 1 - (2/π) atan(11) = 0.0577."""
    test = paired_t_test({5: 1.0, 6: 1.2}, {5: 0.0, 6: 0.0})
    assert test.t == pytest.approx(11.0) and test.df == 1
    assert test.p == pytest.approx(1 - 2 / math.pi * math.atan(11.0), rel=1e-9)
    assert test.verdict == "within seed spread"


def test_a_clear_difference_exceeds_the_spread_in_either_direction() -> None:
    a = {s: 1.0 + 0.01 * (s % 3) for s in range(6)}
    b = {s: 0.5 + 0.01 * ((s + 1) % 3) for s in range(6)}
    forward, backward = paired_t_test(a, b), paired_t_test(b, a)
    assert forward.p < 1e-6 and forward.verdict == "exceeds seed spread"
    assert backward.p == pytest.approx(forward.p) and backward.t == pytest.approx(-forward.t)
    assert "exceeds seed spread (p < 0.05)" in forward.statement("A", "B")


def test_noise_only_is_within_the_spread() -> None:
    a = {0: 1.0, 1: 2.0, 2: 1.5, 3: 0.5}
    b = {0: 2.0, 1: 1.0, 2: 0.5, 3: 1.5}  # differences -1, 1, 1, -1: mean 0
    test = paired_t_test(a, b)
    assert test.mean == 0.0 and test.t == 0.0 and test.p == pytest.approx(1.0)
    assert test.verdict == "within seed spread"


def test_identical_differences_have_no_spread() -> None:
    shifted = paired_t_test({1: 3.0, 2: 4.0}, {1: 2.0, 2: 3.0})
    assert shifted.std == 0.0 and shifted.p == 0.0 and math.isinf(shifted.t)
    assert shifted.verdict == "exceeds seed spread"
    same = paired_t_test({1: 3.0, 2: 4.0}, {1: 3.0, 2: 4.0})
    assert same.p == 1.0 and same.verdict == "within seed spread"


def test_only_shared_seeds_are_paired_and_fewer_than_two_cannot_decide() -> None:
    test = paired_t_test({1: 1.0, 2: 2.0, 3: 3.0}, {3: 0.0, 4: 1.0})
    assert test.seeds == (3,) and test.n == 1 and math.isnan(test.p)
    assert test.verdict == "cannot be decided"
    text = test.statement("A", "B")
    assert "cannot be decided" in text and "1 shared seed (3)" in text and "--seeds" in text
    assert paired_t_test({1: 1.0}, {2: 1.0}).statement("A", "B").count("0 shared seeds") == 1
