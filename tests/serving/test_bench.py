"""make bench's report: ratios against the best in-process FP32, latency gaps, goal verdicts."""

from serving import perf_analyzer
from serving.bench import (
    Measurement,
    goals,
    latency_gaps,
    markdown,
    measurement,
    ratios,
    served_measurement,
)


def _point(kind: str, precision: str, clients: int, throughput: float, p50: float) -> Measurement:
    return Measurement(
        kind, precision, clients, throughput, p50, p50 * 2, 100, throughput, throughput
    )


RESULTS = [
    _point("in-process per-call", "fp32", 1, 300.0, 3.0),
    _point("in-process per-call", "int8", 1, 500.0, 1.8),
    _point("served", "fp32", 1, 150.0, 6.5),
    _point("served", "int8", 1, 250.0, 3.5),
    _point("in-process per-call", "fp32", 32, 400.0, 60.0),
    _point("in-process batched", "fp32", 32, 250.0, 120.0),
    _point("in-process per-call", "int8", 32, 900.0, 30.0),
    _point("served", "fp32", 32, 380.0, 80.0),
    _point("served", "int8", 32, 820.0, 40.0),
]


def test_served_throughput_is_compared_with_the_best_in_process_fp32() -> None:
    table = ratios(RESULTS)
    assert table[32] == {"served fp32": 380.0 / 400.0, "served int8": 820.0 / 400.0}
    assert table[1]["served int8"] == 250.0 / 300.0, "in-process int8 is never the baseline"


def test_the_latency_gap_is_served_minus_in_process_per_precision() -> None:
    gaps = latency_gaps(RESULTS)
    assert gaps == {"fp32": 6.5 - 3.0, "int8": 3.5 - 1.8}


def test_each_goal_carries_its_measurement_and_verdict() -> None:
    found = goals(RESULTS)
    assert found["served int8 / best in-process fp32 at 32"]["met"] is True  # 2.05x
    assert found["served fp32 / best in-process fp32 at 32"]["met"] is True  # 0.95x
    assert found["served p50 at 1 client: int8 below fp32 (ms)"]["measured"] == [3.5, 6.5]
    assert found["served - in-process p50 at 1 client, fp32 (ms)"]["met"] is False  # 3.5 ms
    assert found["served - in-process p50 at 1 client, int8 (ms)"]["met"] is True  # 1.7 ms
    table = markdown(RESULTS)
    assert "| served int8 | 32 | 820.0 (820-820) | 40.0 | 80.0 | 2.05x |" in table
    assert "| served - in-process p50 at 1 client, fp32 (ms) | 3.50 | <= 2.0 | no |" in table


def test_a_measurement_keeps_the_spread_of_its_rounds() -> None:
    rounds = [(300, 1.0, [0.01] * 300), (360, 1.0, [0.02] * 360), (330, 1.0, [0.03] * 330)]
    point = measurement("served", "int8", 8, rounds)
    assert (point.throughput, point.throughput_min, point.throughput_max) == (330, 300, 360)
    assert point.p50_ms == 20.0 and point.texts == 990 and point.mode == "served int8"


def test_served_points_take_the_median_of_perf_analyzers_runs() -> None:
    def report(throughput: float, p50: float, infer_us: int) -> perf_analyzer.Report:
        split = dict.fromkeys(perf_analyzer.BREAKDOWN, 10) | {"Server Compute Infer": infer_us}
        return perf_analyzer.Report(1, 100, throughput, p50, p50 * 3, split)

    point = served_measurement(
        "fp32", 1, [report(150, 6.0, 5000), report(170, 5.0, 4000), report(160, 7.0, 4500)]
    )
    assert (point.throughput, point.throughput_min, point.throughput_max) == (160, 150, 170)
    assert (point.p50_ms, point.p99_ms, point.texts) == (6.0, 18.0, 300)
    assert point.breakdown_us is not None and point.breakdown_us["Server Compute Infer"] == 4500
    table = markdown([*RESULTS[:2], point, *RESULTS[3:]])
    assert "| served fp32 | 10 | 10 | 10 | 10 | 4500 | 10 | 10 |" in table
