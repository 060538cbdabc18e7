"""The burst benchmark's pure parts: Poisson arrivals with the mix, and the goal verdicts."""

from collections import Counter

import numpy as np
import pytest

from serving.burst_bench import LOADS, POLICIES, Run, goals, markdown, schedule


def test_arrivals_are_poisson_with_the_traffic_mix() -> None:
    arrivals = schedule(rate=200.0, seconds=30.0, seed=1)
    assert len(arrivals) == pytest.approx(6000, rel=0.05)
    gaps = np.diff([a.at for a in arrivals])
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.05), "exponential gaps"
    kinds = Counter(a.kind for a in arrivals)
    assert kinds["sensitive"] / len(arrivals) == pytest.approx(0.2, abs=0.02)
    assert kinds["ranker"] / len(arrivals) == pytest.approx(0.1, abs=0.02)
    assert schedule(200.0, 30.0, seed=1) == arrivals, "the same schedule for every policy"


def run(policy: str, load: float, share: float, p99: float = 100.0, leaks: int = 0) -> Run:
    return Run(policy, load, 10 * load, 100, 20.0, p99, p99, share, 0, leaks, 0, (p99, p99), 1.0)


def ideal(**overrides: Run) -> list[Run]:
    runs = [run(p, load, 0.0 if p != "burst" else max(0, 1 - 1 / load)) for p in POLICIES
            for load in LOADS]  # fmt: skip
    return [overrides.get(f"{r.policy}@{r.load}", r) for r in runs]


def test_goals_are_met_by_an_ideal_run_and_missed_one_at_a_time() -> None:
    assert all(goals(ideal(), slo=200).values())
    slow = goals(ideal(**{"burst@1.5": run("burst", 1.5, 0.33, p99=250)}), slo=200)
    assert [goal for goal, ok in slow.items() if not ok] == [
        "burst p99 (plain) under 200 ms at 1.5C"
    ]
    eager = goals(ideal(**{"burst@0.5": run("burst", 0.5, 0.08)}), slo=200)
    assert not eager["burst public share under 5% at 0.5C"]
    leak = goals(ideal(**{"alternating@1.0": run("alternating", 1.0, 0.5, leaks=1)}), slo=200)
    assert not leak["no sensitive or private-only request reached public"]


def test_the_table_shows_the_bound_next_to_the_share() -> None:
    table = markdown(ideal(), capacity_rate=40.0, slo=200, thresholds=(0.22, 0.15))
    assert "Private capacity C = 40.0 req/s" in table
    assert "| 2.0C | 20.0 | burst | 20.0 | 100.0 | 100.0-100.0 | 100.0 | 50.0% | 50.0% |" in table
