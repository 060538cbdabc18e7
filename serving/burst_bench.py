"""`python -m serving.burst_bench` (`make bench-burst`): burst routing against private-only and
alternation, under an open-loop load ramp, on the running local mode (dedicated cores).

0. A warm-up at high rates on both sites, dropped (`WARM_UP`).
1. The private site's capacity C: the highest Poisson arrival rate at which its p99 stays
   under the SLO (rates grow by `--growth` until it breaks, then `BISECTIONS` halvings; a
   miss counts only when a rerun misses too, so one hiccup of a shared machine is not
   taken for the knee).
2. Steps of 0.5C, 1.0C, 1.5C and 2.0C; at each, the three policies one after the other on
   the same arrival schedule: private-only (a router that knows only the private site),
   alternating (round robin), burst (the stack's SLO).
3. One traffic mix throughout: 10% ctr_ranker calls (private-only), 20% embeddings marked
   sensitive, 70% plain embeddings (one product-search text each).

Arrivals are open loop: each request is due at its Poisson time whatever the others do, and
its latency counts from then (waiting for a free client thread included); a request still
waiting `DEADLINE` after its time counts as an error. Leaks are counted twice: from the
router's counters (sensitive or private-only requests served by public) and from the public
Triton's own success counters (requests there beyond the plain ones the router sent).

Writes build/bench/burst.json, burst.md and burst.png.
"""

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from rich.text import Text

from hybrid.cli import ArgumentParser, ExitCode, positive
from hybrid.config import ConfigError, load_stack_config
from hybrid.console import make_console
from hybrid.paths import BUILD_DIR
from serving.bench import corpus
from serving.clients import EMBEDDING_MODEL, RANKER_MODEL, EmbeddingClient, RankerClient
from serving.endpoints import Endpoint
from serving.errors import ServingError
from serving.local.cores import mode_of
from serving.local.state import DEFAULT_DIR, read_state
from serving.policies import (
    BURST_AT,
    PRIVATE_SITE,
    RETURN_AT,
    AlternatingPolicy,
    BurstPolicy,
    FailoverPolicy,
)
from serving.routing import RetryPolicy, Router
from serving.signals import http_metrics, parse_triton_metrics

LOADS = (0.5, 1.0, 1.5, 2.0)
POLICIES = ("private-only", "alternating", "burst")
RANKER_SHARE = 0.1
SENSITIVE_SHARE = 0.2
DEADLINE = 2.0
"""Seconds a request may take from its due time, client queue included."""
WORKERS = 64
BISECTIONS = 2
WARM_UP = (("private-only", 100.0), ("alternating", 200.0))
"""(policy, rate/s) runs, `WARM_UP_SECONDS` each, whose results are dropped: ONNX Runtime
prepares each new batch shape on first sight, which would otherwise charge the highest
rates of the capacity search with a one-off cost."""
WARM_UP_SECONDS = 20.0
RANKER_ROWS = 4
OUT_DIR = BUILD_DIR / "bench"
Thresholds = tuple[float, float]
"""Burst's (burst_at, return_at) fractions of the SLO."""
console = make_console()


@dataclass(frozen=True)
class Arrival:
    at: float
    """Seconds after the start of the run."""
    kind: str
    """`plain`, `sensitive` or `ranker`."""
    text: str


@dataclass(frozen=True)
class Outcome:
    arrival: Arrival
    latency: float | None
    """Seconds from due time to answer; None: failed."""


@dataclass(frozen=True)
class Run:
    policy: str
    load: float
    """Multiple of C (0 in the capacity search)."""
    rate: float
    requests: int
    p50_ms: float
    p99_ms: float
    """Plain (non-sensitive) embeddings: what the SLO goal is about."""
    p99_all_ms: float
    public_share: float
    """Share of answered requests that the public site served (router counters)."""
    errors: int
    leaks_router: int
    """Sensitive or private-only requests the router's counters show served by public."""
    leaks_triton: int
    """Successes on the public Triton beyond the plain requests the router sent it."""
    p99_spread_ms: tuple[float, float]
    """Lowest and highest plain p99 over the run's three thirds."""
    load_average: float


def schedule(rate: float, seconds: float, seed: int) -> list[Arrival]:
    """Poisson arrivals at `rate` per second with the benchmark's traffic mix."""
    rng = np.random.default_rng(seed)
    texts = corpus()
    arrivals: list[Arrival] = []
    at = 0.0
    while True:
        at += float(rng.exponential(1 / rate))
        if at >= seconds:
            return arrivals
        draw = rng.random()
        kind = "ranker" if draw < RANKER_SHARE else "sensitive"
        if draw >= RANKER_SHARE + SENSITIVE_SHARE:
            kind = "plain"
        arrivals.append(Arrival(at, kind, texts[int(rng.integers(len(texts)))]))


def make_router(
    policy: str, endpoints: Sequence[Endpoint], slo_ms: dict[str, int], thresholds: Thresholds
) -> Router:
    retry = RetryPolicy(deadline=DEADLINE, attempt_timeout=DEADLINE)
    if policy == "private-only":
        private = [e for e in endpoints if e.site == PRIVATE_SITE]
        return Router(private, policy=retry, routing=FailoverPolicy())
    burst_at, return_at = thresholds
    routing = (
        AlternatingPolicy()
        if policy == "alternating"
        else BurstPolicy(slo_ms, burst_at=burst_at, return_at=return_at)
    )
    return Router(endpoints, policy=retry, routing=routing)


def drive(router: Router, arrivals: Sequence[Arrival]) -> list[Outcome]:
    """Send each arrival at its due time from a pool of client threads; wait for all."""
    embedder, ranker = EmbeddingClient(router), RankerClient(router)
    features = ranker.neutral_context(RANKER_ROWS)
    embedder.embed(["warm up"])
    start = time.perf_counter() + 0.2

    def send(arrival: Arrival) -> Outcome:
        due = start + arrival.at
        if time.perf_counter() - due > DEADLINE:
            return Outcome(arrival, None)
        try:
            if arrival.kind == "ranker":
                ranker.score([7] * RANKER_ROWS, list(range(RANKER_ROWS)), features)
            else:
                embedder.embed([arrival.text], sensitive=arrival.kind == "sensitive")
        except ServingError:
            return Outcome(arrival, None)
        latency = time.perf_counter() - due
        return Outcome(arrival, latency if latency <= DEADLINE else None)

    with ThreadPoolExecutor(WORKERS) as pool:
        futures = []
        for arrival in arrivals:
            delay = start + arrival.at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(send, arrival))
        return [future.result() for future in futures]


def triton_successes(endpoints: Sequence[Endpoint]) -> dict[tuple[str, str], float]:
    counts = {}
    for endpoint in endpoints:
        if endpoint.metrics:
            for model, values in parse_triton_metrics(http_metrics(endpoint.metrics)).items():
                counts[(endpoint.site, model)] = values.get("success", 0.0)
    return counts


def measure(
    policy: str,
    load: float,
    rate: float,
    seconds: float,
    endpoints: Sequence[Endpoint],
    slo_ms: dict[str, int],
    seed: int,
    thresholds: Thresholds = (BURST_AT, RETURN_AT),
) -> Run:
    router = make_router(policy, endpoints, slo_ms, thresholds)
    try:
        arrivals = schedule(rate, seconds, seed)
        for model in (EMBEDDING_MODEL, RANKER_MODEL):
            router.spec(model)  # metadata reads: attempts that Triton does not count
        before_router, before_attempts = router.decisions(), Counter(router.attempts)
        before_triton = triton_successes(endpoints)
        outcomes = drive(router, arrivals)
        after_triton = triton_successes(endpoints)
        decisions = Counter(router.decisions())
        decisions.subtract(before_router)
        attempts = Counter(router.attempts)
        attempts.subtract(before_attempts)
    finally:
        router.close()

    def delta(site: str, model: str) -> float:
        return after_triton.get((site, model), 0.0) - before_triton.get((site, model), 0.0)

    served = {site: 0 for site in ("public", "private")}
    leaks_router = 0
    for (site, model, reason, sensitive), count in decisions.items():
        if site in served and reason not in ("fail_closed", "unavailable"):
            served[site] += count
            if site == "public" and (sensitive or model == RANKER_MODEL):
                leaks_router += count
    # Plain embeddings are the only requests the router may send to public (warm-up included):
    # whatever public's Triton answered beyond those, the router did not send as plain.
    sent_public = attempts[("public", EMBEDDING_MODEL)]
    leaks_triton = max(0, round(delta("public", EMBEDDING_MODEL)) - sent_public)
    leaks_triton += round(delta("public", RANKER_MODEL))
    plain = [(o.arrival.at, o.latency) for o in outcomes if o.arrival.kind == "plain" and o.latency]
    answered = [o.latency for o in outcomes if o.latency is not None]
    thirds = [[x for at, x in plain if k <= 3 * at / seconds < k + 1] for k in range(3)]
    spread = [_ms(_percentile(part, 99)) for part in thirds if part]
    total = sum(served.values())
    return Run(
        policy=policy,
        load=load,
        rate=round(rate, 1),
        requests=len(outcomes),
        p50_ms=_ms(_percentile([x for _, x in plain], 50)),
        p99_ms=_ms(_percentile([x for _, x in plain], 99)),
        p99_all_ms=_ms(_percentile(answered, 99)),
        public_share=round(served["public"] / total, 4) if total else 0.0,
        errors=sum(o.latency is None for o in outcomes),
        leaks_router=leaks_router,
        leaks_triton=leaks_triton,
        p99_spread_ms=(min(spread, default=0.0), max(spread, default=0.0)),
        load_average=round(os.getloadavg()[0], 2),
    )


def capacity(
    endpoints: Sequence[Endpoint],
    slo_ms: dict[str, int],
    start: float,
    growth: float,
    seconds: float,
    log: Callable[[Run], None],
) -> tuple[float, list[Run]]:
    """The highest rate at which private-only keeps p99 (whole mix) under the SLO."""
    slo = slo_ms[EMBEDDING_MODEL]
    trials: list[Run] = []

    def passes(rate: float) -> bool:
        run = measure("private-only", 0.0, rate, seconds, endpoints, slo_ms, seed=len(trials))
        trials.append(run)
        log(run)
        return run.p99_all_ms < slo and run.errors <= 0.01 * run.requests

    def holds(rate: float) -> bool:
        return passes(rate) or passes(rate)

    rate, best = start, 0.0
    while holds(rate):
        best, rate = rate, rate * growth
    if best == 0.0:
        raise ServingError(f"the private site misses the {slo} ms SLO even at {start}/s")
    for _ in range(BISECTIONS):
        middle = (best + rate) / 2
        if holds(middle):
            best = middle
        else:
            rate = middle
    return best, trials


def markdown(runs: Sequence[Run], capacity_rate: float, slo: int, thresholds: Thresholds) -> str:
    lines = [
        f"Private capacity C = {capacity_rate:.1f} req/s (p99 under {slo} ms, private only); "
        f"burst from {thresholds[0]} x SLO, back under {thresholds[1]} x SLO.",
        "",
        "| load | rate/s | policy | p50 ms | p99 ms (plain) | p99 spread | p99 ms (all) "
        "| public share | bound 1-C/λ | errors | leaks router/Triton | load avg |",
        "| --- | ---: | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for r in runs:
        if r.load == 0:
            continue
        bound = max(0.0, 1 - 1 / r.load)
        lines.append(
            f"| {r.load:.1f}C | {r.rate} | {r.policy} | {r.p50_ms} | {r.p99_ms} "
            f"| {r.p99_spread_ms[0]}-{r.p99_spread_ms[1]} | {r.p99_all_ms} "
            f"| {r.public_share:.1%} | {bound:.1%} | {r.errors}/{r.requests} "
            f"| {r.leaks_router}/{r.leaks_triton} | {r.load_average} |"
        )
    return "\n".join(lines) + "\n"


def goals(runs: Sequence[Run], slo: int) -> dict[str, bool]:
    burst = {r.load: r for r in runs if r.policy == "burst"}
    return {
        f"burst p99 (plain) under {slo} ms at 1.5C": burst[1.5].p99_ms < slo,
        "burst public share within 10 points of 1-C/λ at every step": all(
            abs(r.public_share - max(0.0, 1 - 1 / r.load)) <= 0.10 for r in burst.values()
        ),
        "burst public share under 5% at 0.5C": burst[0.5].public_share < 0.05,
        "no sensitive or private-only request reached public": all(
            r.leaks_router == 0 and r.leaks_triton == 0 for r in runs
        ),
    }


def plot(runs: Sequence[Run], slo: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (latency, share) = plt.subplots(1, 2, figsize=(11, 4.2))
    for policy in POLICIES:
        points = [r for r in runs if r.policy == policy and r.load > 0]
        loads = [r.load for r in points]
        latency.plot(loads, [r.p99_ms for r in points], marker="o", label=policy)
        share.plot(loads, [r.public_share for r in points], marker="o", label=policy)
    latency.axhline(slo, color="grey", linestyle="--", label=f"SLO {slo} ms")
    latency.set(xlabel="arrival rate (multiple of private capacity C)", ylabel="p99 ms (plain)")
    latency.set_yscale("log")
    bounds = [0.5, 1.0, 1.5, 2.0]
    share.plot(bounds, [max(0, 1 - 1 / b) for b in bounds], "k:", label="least: 1 - C/λ")
    share.set(xlabel="arrival rate (multiple of private capacity C)", ylabel="public share")
    for axis in (latency, share):
        axis.legend()
        axis.grid(alpha=0.3)
    figure.suptitle("burst routing vs private-only and alternation (open-loop Poisson)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m serving.burst_bench", description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--stack", default="dev", help="stack whose latency SLOs to use")
    parser.add_argument("--start-rate", type=positive, default=20.0, help="capacity search start")
    parser.add_argument("--growth", type=positive, default=1.3, help="capacity search factor")
    parser.add_argument("--trial-seconds", type=positive, default=15.0)
    parser.add_argument("--step-seconds", type=positive, default=15.0)
    parser.add_argument("--burst-at", type=positive, default=BURST_AT, help="fraction of the SLO")
    parser.add_argument("--return-at", type=positive, default=RETURN_AT, help="fraction of the SLO")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    if args.growth <= 1:
        parser.error(f"--growth must be more than 1 (the search must grow), not {args.growth}")
    try:
        state = read_state(args.state_dir)
        if state is None:
            raise ServingError("the local mode is not running: `make bench-burst` starts it")
        if mode_of(state.cores) != "dedicated":
            console.print("[yellow]the sites share every core: bursting adds no capacity[/]")
        slo_ms = load_stack_config(args.stack).serving.latency_slo_ms
        slo = slo_ms[EMBEDDING_MODEL]
        thresholds = (args.burst_at, args.return_at)
        BurstPolicy(slo_ms, burst_at=args.burst_at, return_at=args.return_at)  # checked early
        endpoints = [site.endpoint for site in state.sites.values()]
        started = os.getloadavg()

        def log(run: Run) -> None:
            console.print(
                f"{run.policy:>12} {run.load:.1f}C {run.rate:7.1f}/s  p50 {run.p50_ms:7.1f}  "
                f"p99 {run.p99_ms:7.1f} (all {run.p99_all_ms:7.1f})  public "
                f"{run.public_share:6.1%}  errors {run.errors}  leaks "
                f"{run.leaks_router}/{run.leaks_triton}  load {run.load_average}"
            )

        console.print("warming up both sites (results dropped)")
        for policy, rate in WARM_UP:
            measure(policy, 0.0, rate, WARM_UP_SECONDS, endpoints, slo_ms, seed=0)
        c, trials = capacity(endpoints, slo_ms, args.start_rate, args.growth,
                             args.trial_seconds, log)  # fmt: skip
        console.print(f"private capacity C = {c:.1f} req/s")
        runs: list[Run] = []
        for step, load in enumerate(LOADS):
            for policy in POLICIES:
                run = measure(policy, load, load * c, args.step_seconds, endpoints, slo_ms,
                              seed=100 + step, thresholds=thresholds)  # fmt: skip
                runs.append(run)
                log(run)
    except (ServingError, ConfigError, OSError) as error:
        console.print("[red]error:[/red]", Text(str(error)))
        if isinstance(error, ServingError):
            return error.exit_code
        return ExitCode.USAGE if isinstance(error, ConfigError) else ExitCode.FAILED
    args.out.mkdir(parents=True, exist_ok=True)
    met = goals(runs, slo)
    report = {
        "capacity": c,
        "slo_ms": slo,
        "thresholds": {"burst_at": args.burst_at, "return_at": args.return_at},
        "cores": {site: list(cores) for site, cores in state.cores.items()},
        "cpus": os.cpu_count(),
        "load_average": {"start": started, "end": os.getloadavg()},
        "capacity_trials": [asdict(t) for t in trials],
        "runs": [asdict(r) for r in runs],
        "goals": met,
    }
    (args.out / "burst.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(runs, c, slo, thresholds)
    goal_lines = "".join(f"- {'met' if ok else 'NOT met'}: {goal}\n" for goal, ok in met.items())
    (args.out / "burst.md").write_text(table + "\n" + goal_lines)
    plot(runs, slo, args.out / "burst.png")
    console.print(table + "\n" + goal_lines, highlight=False)
    console.print(f"wrote {args.out}/burst.{{json,md,png}}")
    return 0


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


if __name__ == "__main__":
    sys.exit(main())
