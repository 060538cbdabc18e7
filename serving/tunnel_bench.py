"""`python -m serving.tunnel_bench`: what the VPN network mode costs text_embedding on the
private site, against the loopback mode, in one run.

Both stacks run side by side (own folders under build/bench/tunnel/). Each point is
`clients` threads sending one text per request to the private site through the client
library (gRPC, mutual TLS): direct on 127.0.0.1 for loopback; for VPN, the public
namespace's gateway, user-space ESP through one tunnel, the private namespace. Networks
and client counts are interleaved and repeated, so load from anything else on the machine
falls on all of them alike; each round is kept, so the spread is reported too.

Writes build/bench/tunnel.json and tunnel.md.
"""

import json
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.text import Text

from hybrid.cli import ArgumentParser, ExitCode, at_least_one, positive
from hybrid.config import ConfigError
from hybrid.console import make_console
from hybrid.manifest import ManifestError
from serving.bench import OUT_DIR, corpus, run_threads
from serving.clients import EmbeddingClient
from serving.errors import ServingError
from serving.local import stack
from serving.local.repository import LOCAL_REPOSITORY, site_manifests
from serving.local.state import LocalState
from serving.routing import Router

NETWORKS = ("loopback", "vpn")
CONCURRENCY = (1, 32)
console = make_console()


def measure(
    state: LocalState, clients: int, seconds: float, texts: Sequence[str]
) -> dict[str, float]:
    """One point: texts per second and latency percentiles over its requests."""
    router = Router([state.sites["private"].endpoint])
    client = EmbeddingClient(router, batch_size=1)
    try:
        run_threads(client.embed, texts, clients, 1, min(1.0, seconds))  # warm the channels
        done, elapsed, latencies = run_threads(client.embed, texts, clients, 1, seconds)
    finally:
        router.close()
    ordered = sorted(latencies)
    return {
        "throughput": done / elapsed,
        "p50_ms": statistics.median(ordered) * 1e3,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3,
        "requests": done,
    }


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per network and client count: median over rounds, and the spread (min..max)."""
    result: dict[str, Any] = {}
    for network in NETWORKS:
        for clients in CONCURRENCY:
            points = [r for r in rounds if r["network"] == network and r["clients"] == clients]
            if not points:
                continue
            entry = {}
            for key in ("throughput", "p50_ms"):
                values = [p[key] for p in points]
                entry[key] = statistics.median(values)
                entry[f"{key}_range"] = [min(values), max(values)]
            result[f"{network}/{clients}"] = entry
    return result


def markdown(result: dict[str, Any], load: Sequence[float]) -> str:
    lines = [
        "| clients | loopback texts/s | VPN texts/s | VPN / loopback | loopback p50 ms | "
        "VPN p50 ms |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for clients in CONCURRENCY:
        loop, vpn = result[f"loopback/{clients}"], result[f"vpn/{clients}"]

        def spread(entry: dict[str, Any], key: str) -> str:
            low, high = entry[f"{key}_range"]
            return f"{entry[key]:.1f} ({low:.1f}-{high:.1f})"

        ratio = vpn["throughput"] / loop["throughput"]
        lines.append(
            f"| {clients} | {spread(loop, 'throughput')} | {spread(vpn, 'throughput')} | "
            f"{ratio:.2f} | {spread(loop, 'p50_ms')} | {spread(vpn, 'p50_ms')} |"
        )
    lines.append("")
    lines.append(
        f"Median over rounds (min-max in brackets); load average {load[0]:.2f} before, "
        f"{load[1]:.2f} after (the machine is shared)."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m serving.tunnel_bench", description=__doc__)
    parser.add_argument("--seconds", type=positive, default=5.0, help="measured time per point")
    parser.add_argument("--rounds", type=at_least_one, default=3, help="interleaved repetitions")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    try:
        manifests = site_manifests("dev")
    except (ManifestError, ConfigError) as error:
        console.print("[red]error:[/red]", Text(str(error)))
        return ExitCode.USAGE
    folders = {network: args.out / "tunnel" / network for network in NETWORKS}
    texts = corpus()
    rounds: list[dict[str, Any]] = []
    load_before = os.getloadavg()[0]
    try:
        states = {
            network: stack.up(
                "dev", LOCAL_REPOSITORY, manifests, folders[network], console, network=network
            )
            for network in NETWORKS
        }
        for number in range(args.rounds):
            for clients in CONCURRENCY:
                for network in NETWORKS:
                    point = measure(states[network], clients, args.seconds, texts)
                    rounds.append({"round": number, "network": network, "clients": clients,
                                   **point})  # fmt: skip
                    console.print(
                        f"round {number} {network:8} {clients:2} clients: "
                        f"{point['throughput']:6.1f} texts/s, p50 {point['p50_ms']:.1f} ms"
                    )
    except ServingError as error:
        console.print("[red]error:[/red]", Text(str(error)))
        return error.exit_code
    finally:
        for folder in folders.values():
            stack.down(folder, console)
    load = (load_before, os.getloadavg()[0])
    result = summary(rounds)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"rounds": rounds, "summary": result, "load_average": load}
    (args.out / "tunnel.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(result, load)
    (args.out / "tunnel.md").write_text(text)
    console.print(text, markup=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
