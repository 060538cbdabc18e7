"""Live load signals: the estimator, the client's own counts, and Triton /metrics windows."""

import pytest

from serving.signals import (
    ClientSignals,
    ServerLoad,
    SiteLoad,
    TritonMetrics,
    estimate_wait,
    parse_triton_metrics,
)


def triton_text(success: int, request_us: int, queue_us: int, pending: int | None = 0) -> str:
    """A Triton 2.51 /metrics page for one model (plus a series the parser must skip)."""
    lines = [
        "# HELP nv_inference_request_success Number of successful inference requests",
        "# TYPE nv_inference_request_success counter",
        f'nv_inference_request_success{{model="text_embedding",version="1"}} {success}',
        "# HELP nv_inference_request_duration_us Cumulative inference request duration",
        "# TYPE nv_inference_request_duration_us counter",
        f'nv_inference_request_duration_us{{model="text_embedding",version="1"}} {request_us}',
        "# HELP nv_inference_queue_duration_us Cumulative inference queuing duration",
        "# TYPE nv_inference_queue_duration_us counter",
        f'nv_inference_queue_duration_us{{model="text_embedding",version="1"}} {queue_us}',
        "# HELP nv_cpu_utilization CPU utilization rate [0.0 - 1.0]",
        "# TYPE nv_cpu_utilization gauge",
        "nv_cpu_utilization 0.5",
    ]
    if pending is not None:
        lines += [
            "# HELP nv_inference_pending_request_count Instantaneous number of pending requests",
            "# TYPE nv_inference_pending_request_count gauge",
            f'nv_inference_pending_request_count{{model="text_embedding",version="1"}} {pending}',
        ]
    return "\n".join(lines) + "\n"


def test_no_signal_means_no_known_wait() -> None:
    assert estimate_wait(SiteLoad()) == 0.0


def test_the_client_view_scales_recent_latency_by_the_queue_now() -> None:
    calm = SiteLoad(in_flight=0, latency_s=0.02, met_in_flight=0.0)
    assert estimate_wait(calm) == pytest.approx(0.02)
    queued = SiteLoad(in_flight=9, latency_s=0.02, met_in_flight=0.0)
    assert estimate_wait(queued) == pytest.approx(0.2), "ten requests ahead of service"
    drained = SiteLoad(in_flight=1, latency_s=0.3, met_in_flight=11.0)
    assert estimate_wait(drained) == pytest.approx(0.05), "a draining queue lowers the wait"


def test_the_server_view_counts_other_clients_load() -> None:
    server = ServerLoad(request_s=0.04, queue_s=0.03, pending=7, in_system=1.0)
    load = SiteLoad(in_flight=0, latency_s=0.01, server=server)
    assert estimate_wait(load) == pytest.approx(0.04 * 8 / 2), "pending now vs the window"
    without_pending = SiteLoad(server=ServerLoad(0.04, 0.03, None))
    assert estimate_wait(without_pending) == pytest.approx(0.04)


def test_client_signals_count_in_flight_and_average_latency() -> None:
    signals = ClientSignals()
    first = signals.started("private", "m")
    second = signals.started("private", "m")
    assert (first, second) == (0, 1)
    assert signals.load("private", "m").in_flight == 2
    signals.finished("private", "m", 0.1, first)
    signals.finished("private", "m", None, second)
    load = signals.load("private", "m")
    assert load.in_flight == 0 and load.latency_s == pytest.approx(0.1), "failures not timed"
    signals.finished("private", "m", 0.2, signals.started("private", "m"))
    assert signals.load("private", "m").latency_s == pytest.approx(0.12), "EWMA of 0.1, 0.2"


def test_metrics_are_read_per_window_between_scrapes() -> None:
    pages = iter([triton_text(10, 100_000, 50_000), triton_text(30, 2_100_000, 1_050_000, 4)])
    metrics = TritonMetrics({"private": "127.0.0.1:1"}, fetch=lambda _: next(pages))
    metrics.scrape()
    first = metrics.load("private", "text_embedding")
    assert first is not None and first.request_s is None, "one scrape is not a window"
    metrics.scrape()
    window = metrics.load("private", "text_embedding")
    assert window is not None and window.pending == 4
    assert window.request_s == pytest.approx(0.1), "2 s of duration over 20 requests"
    assert window.queue_s == pytest.approx(0.05)


def test_a_silent_site_keeps_its_last_window() -> None:
    def fetch(address: str) -> str:
        raise ConnectionRefusedError(address)

    metrics = TritonMetrics({"private": "127.0.0.1:1"}, fetch=fetch)
    metrics.scrape()
    assert metrics.load("private", "text_embedding") is None


def test_the_parser_sums_versions_and_skips_other_series() -> None:
    text = triton_text(3, 30, 20, pending=None).replace('version="1"', 'version="2"')
    parsed = parse_triton_metrics(text + triton_text(1, 10, 5, pending=None))
    assert parsed == {"text_embedding": {"success": 4, "request_us": 40, "queue_us": 25}}
