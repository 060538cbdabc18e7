"""Live load signals per site and model, and the wait estimator that burst routing reads.

Three sources, none of them on the request path:
- the client's own requests in flight per site and model (counted by the router);
- recent latency the client observed there (an EWMA, with the in-flight count each of
  those requests was sent into);
- the site's Triton `/metrics`, scraped by a background thread every `interval` seconds:
  request duration and queue time per request over the last window, and pending requests
  where Triton exports them (other clients' load shows up only here).

The estimator (`estimate_wait`) is the larger of two views of the time a new request
would take at the site, so either one can raise the alarm:
- client view, Little's law scaled to the current queue: `L * (n + 1) / (m + 1)`, with
  `L` the recent latency, `m` the in-flight count those requests met and `n` the count now.
  It reacts at once to a queue building up, and falls as the queue drains even when no
  request has finished lately (which is what ends a burst);
- server view: Triton's request duration per request over the last scrape window, scaled
  by the requests pending now against the average in the system over that window (Little's
  law: completions per second times duration per request).
No signal yet means no known wait (0): a cold site is not avoided.
"""

import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

DEFAULT_INTERVAL = 0.25
"""Seconds between scrapes of each site's /metrics."""
EWMA_WEIGHT = 0.2
"""Weight of the newest latency sample in the moving averages."""
TRITON_SERIES = {
    "nv_inference_request_success": "success",
    "nv_inference_request_duration_us": "request_us",
    "nv_inference_queue_duration_us": "queue_us",
    "nv_inference_pending_request_count": "pending",
}


@dataclass(frozen=True)
class ServerLoad:
    """What a site's Triton says about one model over the last scrape window."""

    request_s: float | None
    """Server-side duration per request (queue + compute); None: no request finished."""
    queue_s: float | None
    """Queue time per request; None: no request finished."""
    pending: float | None
    """Requests queued or running now; None where Triton does not export it."""
    in_system: float = 0.0
    """Average requests in the server over the window (completion rate x duration)."""


@dataclass(frozen=True)
class SiteLoad:
    """Every live signal about one model on one site, as the estimator reads it."""

    in_flight: int = 0
    latency_s: float | None = None
    """EWMA of the latency the client observed; None before the first answer."""
    met_in_flight: float = 0.0
    """EWMA of the in-flight count those requests were sent into."""
    server: ServerLoad | None = None


def estimate_wait(load: SiteLoad) -> float:
    """Seconds a new request would take at the site (see the module docstring)."""
    views = [0.0]
    if load.latency_s is not None:
        views.append(load.latency_s * (load.in_flight + 1) / (load.met_in_flight + 1))
    server = load.server
    if server is not None and server.request_s is not None:
        scale = 1.0
        if server.pending is not None:
            scale = max(1.0, (server.pending + 1) / (server.in_system + 1))
        views.append(server.request_s * scale)
    return max(views)


class ClientSignals:
    """In-flight counts and observed latency per (site, model), kept by the router."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight: dict[tuple[str, str], int] = {}
        self._latency: dict[tuple[str, str], tuple[float, float]] = {}

    def started(self, site: str, model: str) -> int:
        """Count a request sent; returns the in-flight count it met."""
        with self._lock:
            met = self._in_flight.get((site, model), 0)
            self._in_flight[(site, model)] = met + 1
            return met

    def finished(self, site: str, model: str, seconds: float | None, met: int) -> None:
        """Count a request answered (`seconds`) or failed (None)."""
        key = (site, model)
        with self._lock:
            self._in_flight[key] -= 1
            if seconds is None:
                return
            if key not in self._latency:
                self._latency[key] = (seconds, float(met))
                return
            latency, met_before = self._latency[key]
            self._latency[key] = (
                latency + EWMA_WEIGHT * (seconds - latency),
                met_before + EWMA_WEIGHT * (met - met_before),
            )

    def load(self, site: str, model: str) -> SiteLoad:
        with self._lock:
            latency, met = self._latency.get((site, model), (None, 0.0))
            return SiteLoad(self._in_flight.get((site, model), 0), latency, met)


class TritonMetrics:
    """Scrapes each site's Triton /metrics in the background; `load` reads the last window.

    `fetch` turns a host:port into the metrics text (tests pass a fake one).
    """

    def __init__(
        self,
        sites: Mapping[str, str],
        interval: float = DEFAULT_INTERVAL,
        fetch: Callable[[str], str] | None = None,
    ) -> None:
        self.sites = dict(sites)
        self.interval = interval
        self._fetch = fetch or http_metrics
        self._lock = threading.Lock()
        self._totals: dict[str, tuple[float, dict[str, dict[str, float]]]] = {}
        self._windows: dict[tuple[str, str], ServerLoad] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None and self.sites:
            self._thread = threading.Thread(target=self._run, name="triton-metrics", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def load(self, site: str, model: str) -> ServerLoad | None:
        with self._lock:
            return self._windows.get((site, model))

    def scrape(self) -> None:
        """One scrape of every site; a site that does not answer keeps its last window."""
        for site, address in self.sites.items():
            try:
                totals = parse_triton_metrics(self._fetch(address))
            except (OSError, ValueError):
                continue
            now = time.monotonic()
            with self._lock:
                then, before = self._totals.get(site, (now, {}))
                self._totals[site] = (now, totals)
                for model, values in totals.items():
                    window = _window(before.get(model), values, now - then)
                    self._windows[(site, model)] = window

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.scrape()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))


def parse_triton_metrics(text: str) -> dict[str, dict[str, float]]:
    """model -> {success, request_us, queue_us, pending}, summed over versions."""
    models: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = TRITON_SERIES.get(sample.name.removesuffix("_total"))
            model = sample.labels.get("model")
            if name is None or model is None:
                continue
            values = models.setdefault(model, {})
            values[name] = values.get(name, 0.0) + sample.value
    return models


def _window(before: dict[str, float] | None, now: dict[str, float], seconds: float) -> ServerLoad:
    pending = now.get("pending")
    done = now.get("success", 0.0) - (before or {}).get("success", 0.0)
    if before is None or done <= 0 or seconds <= 0:
        return ServerLoad(None, None, pending)
    request_s, queue_s = (
        (now.get(key, 0.0) - before.get(key, 0.0)) / done / 1e6
        for key in ("request_us", "queue_us")
    )
    return ServerLoad(request_s, queue_s, pending, in_system=done / seconds * request_s)


def http_metrics(address: str) -> str:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=1.0) as response:
        return str(response.read().decode())
