"""`python -m serving.local up|down|status`: the embedded local mode (`make up-local` etc.)."""

import json
import sys
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from hybrid.cli import ArgumentParser, ExitCode, error_json, positive
from hybrid.config import ConfigError
from hybrid.console import make_console
from hybrid.manifest import ManifestError
from modelkit.errors import ModelkitError
from serving.errors import ServingError
from serving.local import cores as site_cores
from serving.local import stack
from serving.local.state import DEFAULT_DIR, LocalState, read_state

console = make_console()


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m serving.local",
        description="Two real Triton sites on this machine, loading the model repository "
        "from emulated encrypted buckets (public: moto S3+KMS; private: fake-gcs-server, "
        "gRPC mutual TLS).",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_DIR,
        help="where state.json, logs and certificates live (default: .local)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start both sites (idempotent), smoke-test, summarize")
    up.add_argument("--stack", default="dev", help="stack whose model placement to serve")
    up.add_argument(
        "--timeout",
        type=positive,
        default=stack.READY_TIMEOUT,
        help="seconds to wait for readiness",
    )
    up.add_argument(
        "--network",
        choices=stack.NETWORKS,
        default="loopback",
        help="loopback (default), or vpn: each site in its own network namespace, the private "
        "one reachable only through two IKEv2 tunnels (root, strongSwan: `make setup-vpn`)",
    )
    up.add_argument(
        "--cores",
        choices=site_cores.MODES,
        default="shared",
        help="shared (default): both sites on every core; dedicated: each site pinned to its "
        "own half of the cores (on one core, both get it), so the private capacity is a real "
        "limit (make bench-burst)",
    )
    commands.add_parser("down", help="stop everything `up` started (idempotent)")
    status = commands.add_parser("status", help="health of every process and site")
    status.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            return _up(args.stack, args.state_dir, args.timeout, args.network, args.cores)
        if args.command == "down":
            stack.down(args.state_dir, console)
            return ExitCode.OK
        return _status(args.state_dir, args.format)
    except (ServingError, ModelkitError, ManifestError, ConfigError) as error:
        code = getattr(error, "exit_code", ExitCode.USAGE)
        if getattr(args, "format", None) == "json":
            print(error_json(str(error), code))
        make_console(stderr=True).print("[red]error:[/red]", Text(str(error)))
        return code


def _up(stack_name: str, folder: Path, timeout: float, network: str, cores: str) -> int:
    from serving.inprocess import InProcessEmbedder
    from serving.local.repository import LOCAL_REPOSITORY, site_manifests
    from serving.local.smoke import SAMPLE, smoke

    manifests = site_manifests(stack_name)
    state = stack.up(
        stack_name, LOCAL_REPOSITORY, manifests, folder, console, timeout, network, cores=cores
    )
    console.print(_sites_table(state))
    if state.vpn_slot is not None:
        console.print(_tunnels_table(stack.health(state, folder)["vpn"]))
    results = smoke(state, InProcessEmbedder(LOCAL_REPOSITORY))
    table = Table(title=f"smoke test: '{SAMPLE[0]}' vs '{SAMPLE[1]}'")
    for column in ("site", "similarity", "vs in-process", "ctr_ranker (user 7)"):
        table.add_column(column)
    for result in results:
        ranked = "not placed here"
        if result.ranking:
            item, probability = result.ranking[0]
            ranked = f"top item {item}, p(click) {probability:.3f}"
        table.add_row(
            result.site, f"{result.similarity:.4f}", f"cosine {result.agreement:.6f}", ranked
        )
    console.print(table)
    console.print(f"state: {folder / 'state.json'}  ·  stop with `make down-local`")
    return ExitCode.OK


def _status(folder: Path, output: str) -> int:
    state = read_state(folder)
    if state is None:
        if output == "json":
            print(json.dumps({"running": False}))
        else:
            console.print("local mode is not running (start it with `make up-local`).")
        return ExitCode.UNAVAILABLE
    health = stack.health(state, folder)
    if output == "json":
        print(json.dumps(health, indent=2))
    else:
        table = Table(title="processes")
        for column in ("name", "pid", "alive", "log"):
            table.add_column(column)
        for name, process in state.processes.items():
            alive = health["processes"][name]
            table.add_row(name, str(process.pid), _mark(alive), process.log)
        console.print(table)
        console.print(_sites_table(state, health))
        if "vpn" in health:
            console.print(_tunnels_table(health["vpn"]))
    return ExitCode.OK if health["healthy"] else ExitCode.UNAVAILABLE


def _sites_table(state: LocalState, health: dict[str, Any] | None = None) -> Table:
    """One column per site, one row per fact: narrow enough for a terminal."""
    table = Table(
        title="sites",
        caption="prefix: the hash of the site's own models, cut from the `local` build target, "
        "so not the build table's hash of the whole target",
    )
    table.add_column("")
    for name in state.sites:
        table.add_column(name, overflow="fold")
    rows: dict[str, list[str]] = {
        "gRPC": [],
        "HTTP": [],
        "metrics": [],
        "models": [],
        "bucket": [],
        "prefix": [],
        "cores": [],
    }
    for name, site in state.sites.items():
        endpoint = site.endpoint
        rows["gRPC"].append(f"{endpoint.grpc} ({'mutual TLS' if endpoint.tls else 'plaintext'})")
        rows["HTTP"].append(endpoint.http or "off (gRPC only)")
        rows["metrics"].append(site.metrics)
        ready = health["sites"][name]["models"] if health else None
        rows["models"].append(
            ", ".join(f"{m} {_mark(ready.get(m, False))}" if ready else m for m in endpoint.models)
        )
        bucket = site.repository.rsplit("/repo/", 1)[0].rsplit("/", 1)[-1]
        scheme = site.repository.split("://", 1)[0]
        rows["bucket"].append(f"{scheme}://{bucket}")
        rows["prefix"].append(f"repo/{site.content_hash[:16]}…")
        pinned = state.cores.get(name)
        rows["cores"].append(",".join(map(str, pinned)) if pinned else "shared")
    for label, values in rows.items():
        table.add_row(label, *values)
    return table


def _tunnels_table(vpn: dict[str, Any]) -> Table:
    """One row per tunnel and site: IKE and CHILD SA state, underlay path, ESP counters."""
    public, private = vpn["namespaces"]
    table = Table(title=f"VPN tunnels (namespaces {public}, {private}; {len(vpn['up'])} up)")
    for column in ("tunnel", "site", "IKE SA", "CHILD SA", "underlay", "ESP in / out"):
        table.add_column(column)
    for name in vpn["tunnels"]:
        for site, tunnels in vpn["sites"].items():
            if "error" in tunnels:
                table.add_row(name, site, "[red]charon not answering[/red]", "", "", "")
                continue
            t = tunnels.get(name)
            if t is None:
                table.add_row(name, site, "[red]down[/red]", "none", "", "")
                continue
            ike = t["ike"] if t["ike"] == "ESTABLISHED" else f"[red]{t['ike']}[/red]"
            child = t["child"] if t["child"] == "INSTALLED" else f"[red]{t['child']}[/red]"
            counters = f"{t['packets_in']} pkts ({t['bytes_in']} B) / {t['packets_out']} pkts"
            table.add_row(name, site, ike, child, f"{t['local']} → {t['remote']}", counters)
    return table


def _mark(ok: bool) -> str:
    return "[green]✔[/green]" if ok else "[red]✘[/red]"


if __name__ == "__main__":
    sys.exit(main())
