"""`python -m serving embed|rank`: a thin CLI over EmbeddingClient and RankerClient.

Exit codes are hybrid.cli's (docs/cli.md): 2 for a usage mistake, 3 when no site the
model is placed on answered.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from rich.table import Table
from rich.text import Text

from hybrid.cli import ArgumentParser, ExitCode, error_json, positive
from hybrid.config import ConfigError
from hybrid.console import make_console
from hybrid.sites import SITES
from serving.clients import EMBEDDING_MODEL, RANKER_MODEL, EmbeddingClient, RankerClient
from serving.endpoints import DEFAULT_STATE, PROTOCOLS, endpoints_from_state, explicit_endpoint
from serving.errors import ServingError, TargetError
from serving.policies import POLICIES, policy_named
from serving.routing import RetryPolicy, Router

console = make_console()


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m serving",
        description="Query the Triton sites: embeddings and click ranking, routed by placement "
        "(a private-only model never goes to the public site).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    embed = commands.add_parser("embed", help="embed texts, or print their pairwise similarity")
    embed.add_argument("texts", nargs="+", metavar="TEXT", help="texts to embed (UTF-8)")
    embed.add_argument(
        "--similarity", action="store_true", help="print the cosine similarity matrix instead"
    )
    embed.add_argument("--model", default=EMBEDDING_MODEL, help="default: %(default)s")
    embed.add_argument(
        "--sensitive",
        action="store_true",
        help="the texts never leave the private site: they wait there, and fail closed",
    )
    rank = commands.add_parser("rank", help="rank items for a user by click probability")
    rank.add_argument("--user", type=int, required=True, help="user id")
    rank.add_argument("--items", type=int, nargs="+", required=True, help="item ids to rank")
    rank.add_argument(
        "--context",
        type=float,
        nargs="+",
        help="dense context features shared by all items (default: all zeros)",
    )
    rank.add_argument("--model", default=RANKER_MODEL, help="default: %(default)s")
    for command in (embed, rank):
        _connection_options(command)
        command.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args(argv)
    try:
        router = _router(args)
        try:
            if args.command == "embed":
                _embed(EmbeddingClient(router, args.model), args)
            else:
                _rank(RankerClient(router, args.model), args)
        finally:
            router.close()
            if args.stats:
                _stats(router, args.format)
    except (ServingError, ConfigError) as error:
        code = error.exit_code if isinstance(error, ServingError) else ExitCode.USAGE
        if args.format == "json":
            print(error_json(str(error), code))
        make_console(stderr=True).print("[red]error:[/red]", Text(str(error)))
        return code
    return 0


def _connection_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "connection", "default: every site recorded by `make up-local` in .local/state.json"
    )
    group.add_argument("--state", type=Path, default=DEFAULT_STATE, help="state.json to read")
    group.add_argument(
        "--site", action="append", choices=SITES, help="use only this site (repeatable)"
    )
    group.add_argument(
        "--prefer", action="append", choices=SITES, default=[], help="try this site first"
    )
    group.add_argument("--grpc", metavar="HOST:PORT", help="an explicit endpoint instead")
    group.add_argument("--http", metavar="HOST:PORT", help="its HTTP endpoint, if any")
    group.add_argument("--ca", help="CA that signed the server's certificate (mutual TLS)")
    group.add_argument("--cert", help="client certificate (mutual TLS)")
    group.add_argument("--key", help="client private key (mutual TLS)")
    group.add_argument("--protocol", choices=PROTOCOLS, default="grpc")
    group.add_argument(
        "--deadline",
        type=positive,
        default=30.0,
        help="seconds, retries included; more than 0 (default: %(default).0f)",
    )
    group.add_argument(
        "--routing",
        choices=POLICIES,
        default="failover",
        help="failover (default): first site in --prefer order; burst: the first --prefer site "
        "(default private) until its estimated wait passes the model's SLO-derived threshold",
    )
    group.add_argument("--stack", default="dev", help="stack whose latency SLOs burst reads")
    group.add_argument(
        "--stats", action="store_true", help="then print requests per site and reason"
    )


def _router(args: argparse.Namespace) -> Router:
    if args.grpc:
        endpoints = [
            explicit_endpoint(
                "explicit", args.grpc, [args.model], http=args.http,
                ca=args.ca, cert=args.cert, key=args.key,
            )
        ]  # fmt: skip
    else:
        endpoints = endpoints_from_state(args.state)
    if args.site:
        known = [e.site for e in endpoints]
        if unknown := sorted(set(args.site) - set(known)):
            raise TargetError(f"--site {', '.join(unknown)}: not in use; the sites are {known}")
        endpoints = [e for e in endpoints if e.site in args.site]
    policy = RetryPolicy(deadline=args.deadline)
    routing = policy_named(args.routing, args.stack, args.prefer)
    return Router(
        endpoints, protocol=args.protocol, policy=policy, prefer=args.prefer, routing=routing
    )


def _stats(router: Router, output: str) -> None:
    """Why each request went where it went: the router's prometheus counters."""
    counts = sorted(router.decisions().items())
    if output == "json":
        rows = [
            {"site": s, "model": m, "reason": r, "sensitive": k, "requests": n}
            for (s, m, r, k), n in counts
        ]
        print(json.dumps({"requests": rows}))
        return
    table = Table(title=f"requests by site and reason ({type(router.routing).__name__})")
    for column in ("site", "model", "reason", "sensitive", "requests"):
        table.add_column(column, justify="right" if column == "requests" else "left")
    for (site, model, reason, sensitive), count in counts:
        table.add_row(site, model, reason, "yes" if sensitive else "no", str(count))
    console.print(table)


def _answered_by(router: Router) -> list[str]:
    """The sites that served this command's requests, from the router's own counters (a
    request that no site answered raises instead, so every count here is an answer)."""
    return sorted({site for site, _, _, _ in router.decisions()})


def _embed(client: EmbeddingClient, args: argparse.Namespace) -> None:
    embeddings = client.embed(args.texts, sensitive=args.sensitive)
    sites = _answered_by(client.router)
    by = f"{client.model}, answered by {', '.join(sites)}"
    if args.similarity:
        norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
        unit = embeddings / np.maximum(norms, 1e-12)
        matrix = unit @ unit.T
        if args.format == "json":
            similarity = matrix.round(6).tolist()
            print(json.dumps({"sites": sites, "texts": args.texts, "similarity": similarity}))
            return
        table = Table(title=f"cosine similarity ({by})")
        table.add_column("")
        for index in range(len(args.texts)):
            table.add_column(f"[{index}]", justify="right")
        for index, (text, row) in enumerate(zip(args.texts, matrix, strict=True)):
            table.add_row(f"[{index}] {text}", *(f"{value:.4f}" for value in row))
        console.print(table)
        return
    if args.format == "json":
        body = {"model": client.model, "sites": sites, "embeddings": embeddings.tolist()}
        print(json.dumps(body))
        return
    table = Table(title=f"embeddings ({by}; {embeddings.shape[1]} dims)")
    for column in ("text", "norm", "first values"):
        table.add_column(column)
    for text, row in zip(args.texts, embeddings, strict=True):
        head = ", ".join(f"{value:+.4f}" for value in row[:6])
        table.add_row(text, f"{np.linalg.norm(row):.4f}", f"[{head}, ...]")
    console.print(table)


def _rank(client: RankerClient, args: argparse.Namespace) -> None:
    if args.context is None:
        features = client.neutral_context(len(args.items))
    else:
        features = np.tile(np.asarray(args.context, np.float32), (len(args.items), 1))
    ranking = client.rank(args.user, args.items, features)
    sites = _answered_by(client.router)
    if args.format == "json":
        ranked = [[i, p] for i, p in ranking]
        body = {"model": client.model, "sites": sites, "user": args.user, "ranking": ranked}
        print(json.dumps(body))
        return
    by = f"{client.model}, answered by {', '.join(sites)}"
    table = Table(title=f"user {args.user}: items by click probability ({by})")
    table.add_column("rank", justify="right")
    table.add_column("item", justify="right")
    table.add_column("p(click)", justify="right")
    for position, (item, probability) in enumerate(ranking, start=1):
        table.add_row(str(position), str(item), f"{probability:.4f}")
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
