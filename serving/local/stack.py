"""The embedded local mode: two real Triton sites loading their repositories from emulated
encrypted buckets; `up` is idempotent, `down` stops everything `up` recorded.

public:  moto S3 (SSE-KMS, IAM enforced) -> Triton, gRPC + HTTP, plaintext on 127.0.0.1
private: fake-gcs-server (no IAM)        -> Triton, gRPC only, mutual TLS with local certs

Two networks: `loopback` (the default: everything on 127.0.0.1) and `vpn` (each site in
its own network namespace, the private one reachable only through IKEv2 tunnels; see
`serving.local.vpn`).
"""

import fcntl
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from tritonclient.utils import InferenceServerException

from hybrid.console import make_console
from hybrid.manifest import Manifest
from hybrid.sites import SITES
from hybrid.vpn import IkeSettings
from serving.endpoints import Endpoint
from serving.errors import LocalStackError
from serving.local import cores as site_cores
from serving.local import emulators, iam, netns, processes, triton, vpn
from serving.local.addressing import VpnPlan
from serving.local.pki import create_pki, pki_files
from serving.local.processes import Process
from serving.local.state import (
    DEFAULT_DIR,
    LocalState,
    SiteState,
    read_state,
    remove_state,
    write_state,
)
from serving.local.upload import publish, transfer_progress

BUCKETS = {"public": "hybrid-public-models", "private": "hybrid-private-models"}
EMULATORS = ("moto", "fake-gcs")
ADMIN = "admin"
UPLOADER = "uploader"
NETWORKS = ("loopback", "vpn")
READY_TIMEOUT = 240.0


def triton_name(site: str) -> str:
    return f"triton-{site}"


def up(
    stack: str,
    source: Path,
    manifests: Mapping[str, Manifest],
    folder: Path = DEFAULT_DIR,
    console: Console | None = None,
    timeout: float = READY_TIMEOUT,
    network: str = "loopback",
    settings: Mapping[str, IkeSettings] | None = None,
    cores: str = "shared",
) -> LocalState:
    """Start both sites serving `manifests[site]` (files under `source`), or heal what runs.

    A second call finds the recorded processes alive and starts nothing; a Triton that
    died is restarted on its recorded ports and prefix, once what it left behind is removed
    (`serving.local.triton.reclaim`); anything else stale is stopped and started afresh.
    On failure, everything this call started is stopped again.
    `settings` gives each VPN site its own IKE settings (tests make them disagree).
    `cores`: `shared` (every site on every core) or `dedicated` (`serving.local.cores`).
    """
    console = console or make_console(stderr=True)
    if network not in NETWORKS:
        raise LocalStackError(f"network '{network}' is not one of {list(NETWORKS)}")
    if cores not in site_cores.MODES:
        raise LocalStackError(f"cores '{cores}' is not one of {list(site_cores.MODES)}")
    with _exclusive(folder):
        state = read_state(folder)
        if state is not None:
            if all(p.alive() for p in state.processes.values()) and _complete(state):
                if state.stack != stack:
                    raise LocalStackError(
                        f"the local mode already runs stack '{state.stack}'; `make down-local` "
                        f"first to start it with STACK={stack}."
                    )
                if network_of(state) != network:
                    raise LocalStackError(
                        f"the local mode already runs with NETWORK={network_of(state)}; "
                        f"`make down-local` first to start it with NETWORK={network}."
                    )
                if site_cores.mode_of(state.cores) != cores:
                    raise LocalStackError(
                        f"the local mode already runs with {site_cores.mode_of(state.cores)} "
                        f"cores; `make down-local` first to start it with {cores} cores."
                    )
                console.print(
                    f"[green]local mode is already running stack '{stack}'[/green]; "
                    "nothing started."
                )
                stale = [
                    site
                    for site, manifest in manifests.items()
                    if state.sites[site].content_hash != manifest.content_hash
                ]
                if stale:
                    console.print(
                        f"[yellow]{', '.join(stale)} still serve(s) an older build;[/yellow] "
                        "`make down-local up-local` serves the current one."
                    )
                return state
            if _complete(state) and network_of(state) == network and _supporting(state):
                return _heal(state, folder, console, timeout)
            console.print("[yellow]stale local state found; stopping what is left of it[/yellow]")
            _stop_all(state, folder, console)
        return _start(stack, source, manifests, folder, console, timeout, network, settings, cores)


def down(folder: Path = DEFAULT_DIR, console: Console | None = None) -> list[str]:
    """Stop everything recorded (Tritons first), forget it; returns what was running."""
    console = console or make_console(stderr=True)
    with _exclusive(folder):
        state = read_state(folder)
        if state is None:
            console.print("local mode is not running; nothing to stop.")
            return []
        return _stop_all(state, folder, console)


def network_of(state: LocalState) -> str:
    return "loopback" if state.vpn_slot is None else "vpn"


def _stop_all(state: LocalState, folder: Path, console: Console) -> list[str]:
    """Tritons first, then what they depend on; then the VPN's namespaces and links."""
    running = [name for name, process in state.processes.items() if process.alive()]
    for name in sorted(state.processes, key=lambda n: n in EMULATORS or n in vpn.PROCESSES):
        processes.stop(state.processes[name])
    _reclaim(state, folder)
    if state.vpn_slot is not None:
        _remove_network(VpnPlan(state.vpn_slot), folder, console)
    remove_state(folder)
    console.print(f"stopped {', '.join(running) or 'nothing (all had exited)'}")
    return running


def _remove_network(plan: VpnPlan, folder: Path, console: Console) -> None:
    shutil.rmtree(folder / "vpn", ignore_errors=True)  # configs holding the keys
    left = vpn.down(plan)
    if left:
        console.print(f"[red]could not remove[/red] {', '.join(left)}; remove them by hand")
    else:
        console.print(f"removed VPN namespaces {' and '.join(plan.namespaces)} and their links")


@contextmanager
def _exclusive(folder: Path) -> Iterator[None]:
    """One `up` or `down` at a time per folder: a second one must not stop the first's work."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LocalStackError(
                f"another `up` or `down` is running on {folder}; wait for it to finish"
            ) from None
        yield


def health(state: LocalState, folder: Path = DEFAULT_DIR) -> dict[str, Any]:
    """Liveness of every process, readiness of every site and model, and (VPN mode) each
    tunnel's SA state, as plain data."""
    sites: dict[str, Any] = {}
    for name, site in state.sites.items():
        client = site.endpoint.grpc_client()
        ready, models = False, dict.fromkeys(site.endpoint.models, False)
        try:
            ready = bool(client.is_server_ready(client_timeout=2))
            models = {m: bool(client.is_model_ready(m, client_timeout=2)) for m in models}
        except InferenceServerException:
            pass
        finally:
            client.close()
        sites[name] = {"ready": ready, "models": models, "grpc": site.endpoint.grpc}
    alive = {name: process.alive() for name, process in state.processes.items()}
    healthy = (
        _complete(state)
        and all(alive.values())
        and all(s["ready"] and all(s["models"].values()) for s in sites.values())
    )
    report: dict[str, Any] = {"healthy": healthy, "processes": alive, "sites": sites}
    if state.vpn_slot is not None:
        plan = VpnPlan(state.vpn_slot)
        report["vpn"] = vpn.health(folder, plan)
        report["healthy"] = healthy and len(report["vpn"]["up"]) == len(plan.underlays)
    return report


def site_ready(site: SiteState) -> bool:
    """The server is ready and so is every model placed on the site."""
    client = site.endpoint.grpc_client()
    try:
        return bool(
            client.is_server_ready(client_timeout=2)
            and all(client.is_model_ready(m, client_timeout=2) for m in site.endpoint.models)
        )
    finally:
        client.close()


def _start(
    stack: str,
    source: Path,
    manifests: Mapping[str, Manifest],
    folder: Path,
    console: Console,
    timeout: float,
    network: str,
    settings: Mapping[str, IkeSettings] | None,
    cores: str,
) -> LocalState:
    folder.mkdir(parents=True, exist_ok=True)
    state = LocalState(stack=stack, cores=site_cores.split(cores))
    logs = folder / "logs"
    for leftover in (logs, folder / "backends", folder / "pki", folder / "vpn"):
        shutil.rmtree(leftover, ignore_errors=True)
    s3_port, gcs_port, *site_ports = processes.free_ports(2 + 5)
    grpc_public, http_public, metrics_public, grpc_private, metrics_private = site_ports

    def record(process: Process) -> None:
        state.processes[process.name] = process
        write_state(state, folder)

    def claimed(plan: VpnPlan) -> None:
        state.vpn_slot = plan.slot
        write_state(state, folder)

    try:
        plan = None
        if network == "vpn":
            with console.status("VPN: namespaces, two underlay links, two IKEv2 tunnels"):
                plan = vpn.up(folder, claimed, record, settings)
        with console.status("starting the emulated clouds (moto S3+KMS+IAM, fake-gcs-server)"):
            moto, admin = emulators.start_moto(s3_port, logs / "moto.log")
            record(moto)
            record(emulators.start_fake_gcs(gcs_port, logs / "fake-gcs.log"))
        s3_endpoint, gcs_endpoint = f"http://127.0.0.1:{s3_port}", f"http://127.0.0.1:{gcs_port}"
        public_bucket = emulators.create_public_bucket(s3_endpoint, admin, BUCKETS["public"])
        uploader = iam.create_principal(
            s3_endpoint, admin, UPLOADER, emulators.uploader_policy(public_bucket)
        )
        reader = iam.create_principal(
            s3_endpoint, admin, triton_name("public"), emulators.triton_policy(public_bucket)
        )
        state.principals = {ADMIN: admin, triton_name("public"): reader}
        private_bucket = emulators.create_private_bucket(gcs_endpoint, BUCKETS["private"])
        state.emulators = {
            "s3": s3_endpoint,
            "s3_bucket": public_bucket.url,
            "kms_key": public_bucket.kms_key_arn,
            "gcs": gcs_endpoint,
            "gcs_bucket": private_bucket.url,
        }
        with transfer_progress(console) as progress:
            upload = replace(public_bucket, principal=uploader)
            publish(upload, source, manifests["public"], progress)
            publish(private_bucket, source, manifests["private"], progress)
        emulators.seal_public_bucket(public_bucket)

        public_host = private_host = "127.0.0.1"
        if plan is not None:
            storage = {"public": s3_port, "private": gcs_port}
            private_ports = (grpc_private, metrics_private)
            vpn.start_forwarders(folder, plan, storage, private_ports, record)
            public_host, private_host = plan.triton_address("public"), plan.gateway_address
        pki = create_pki(folder / "pki", addresses=_server_addresses(plan))
        state.sites = {
            "public": SiteState(
                endpoint=Endpoint(
                    "public",
                    f"{public_host}:{grpc_public}",
                    f"{public_host}:{http_public}",
                    None,
                    manifests["public"].models,
                    metrics=f"{public_host}:{metrics_public}",
                ),
                repository=f"s3://{s3_endpoint}/{public_bucket.name}/"
                + manifests["public"].prefix.rstrip("/"),
                content_hash=manifests["public"].content_hash,
            ),
            "private": SiteState(
                endpoint=Endpoint(
                    "private",
                    f"{private_host}:{grpc_private}",
                    None,
                    pki.client,
                    manifests["private"].models,
                    metrics=f"{private_host}:{metrics_private}",
                ),
                repository=f"{private_bucket.url}/" + manifests["private"].prefix.rstrip("/"),
                content_hash=manifests["private"].content_hash,
            ),
        }
        write_state(state, folder)
        _start_tritons(state, SITES, folder, record, console, timeout)
    except BaseException:
        for process in reversed(list(state.processes.values())):
            processes.stop(process)
        _reclaim(state, folder)
        if state.vpn_slot is not None:
            _remove_network(VpnPlan(state.vpn_slot), folder, console)
        remove_state(folder)
        raise
    return state


def _server_addresses(plan: VpnPlan | None) -> tuple[str, ...]:
    """Where clients and health checks reach the private Triton: its certificate names them."""
    if plan is None:
        return ("127.0.0.1",)
    return ("127.0.0.1", plan.gateway_address, plan.triton_address("private"))


def _heal(state: LocalState, folder: Path, console: Console, timeout: float) -> LocalState:
    dead = [site for site in SITES if not state.processes[triton_name(site)].alive()]
    console.print(f"[yellow]restarting Triton for {', '.join(dead)}[/yellow] (emulators alive)")

    def record(process: Process) -> None:
        state.processes[process.name] = process
        write_state(state, folder)

    _start_tritons(state, tuple(dead), folder, record, console, timeout)
    return state


def _start_tritons(
    state: LocalState,
    sites: tuple[str, ...],
    folder: Path,
    record: Callable[[Process], None],
    console: Console,
    timeout: float,
) -> None:
    backends = triton.prepare_backends(folder / "backends")
    moto_log = Path(state.processes["moto"].log)
    since = moto_log.stat().st_size if moto_log.is_file() else 0
    started = []
    for site in sites:
        launch = _launch(site, state, folder)
        if (previous := state.processes.get(triton_name(site))) is not None:
            processes.stop(previous)  # it died: this reaps it when it was our child
        triton.reclaim(launch.scratch)  # whatever a killed predecessor left behind
        log = folder / "logs" / f"{triton_name(site)}.log"
        command = triton.command(launch, backends)
        if state.vpn_slot is not None:
            command = [*netns.exec_in(VpnPlan(state.vpn_slot).namespace(site)), *command]
        cores = state.cores.get(site, ())
        command = site_cores.pinned(command, cores)
        env = {**triton.environment(launch), **site_cores.thread_env(cores)}
        process = processes.start(triton_name(site), command, log, env)
        record(process)
        started.append(process)
    with console.status(f"waiting for Triton ({', '.join(sites)}) to load its models"):
        try:
            processes.wait_until(
                lambda: all(site_ready(state.sites[site]) for site in sites),
                started,
                f"Triton ({', '.join(sites)})",
                timeout,
            )
        except LocalStackError as error:
            if "public" in sites and (refused := _refused(state, moto_log, since)):
                raise LocalStackError(f"{refused}\n{error}") from None
            raise


def scratch(folder: Path, site: str) -> Path:
    """The scratch folder of a site's Triton (`serving.local.triton`): found again from the
    state folder alone, so `up` and `down` clean up after a Triton that was killed."""
    return folder / "triton" / site


def _reclaim(state: LocalState, folder: Path) -> None:
    """What the stopped Tritons left behind (stubs, shm regions, model copies)."""
    for site in state.sites:
        triton.reclaim(scratch(folder, site))


def _refused(state: LocalState, moto_log: Path, since: int) -> str | None:
    """What moto refused the public Triton, in plain words: Triton's own error names neither
    the principal nor the action."""
    refused = iam.refusals(moto_log, since)
    if not refused:
        return None
    reader = state.principals[triton_name("public")]
    listed = "".join(f"\n  - {refusal}" for refusal in refused)
    return (
        f"Triton (public) could not read its repository: moto refused {reader.arn}{listed}\n"
        "That user holds the identity policy the stack renders for Triton "
        '(hybrid.bucket_access.s3_access_policy); docs/local-mode.md, "IAM in the local '
        'mode", says what moto checks.'
    )


def _launch(site: str, state: LocalState, folder: Path) -> triton.TritonLaunch:
    """How to (re)start a site's Triton, from nothing but the recorded state."""
    entry = state.sites[site]
    grpc_port = int(entry.endpoint.grpc.rsplit(":", 1)[1])
    metrics_port = int(entry.metrics.rsplit(":", 1)[1])
    http = entry.endpoint.http
    if site == "public":
        env = state.principals[triton_name(site)].env()
        tls = None
    else:
        env = {"CLOUD_STORAGE_EMULATOR_ENDPOINT": state.emulators["gcs"]}
        tls = pki_files(folder / "pki").server
    return triton.TritonLaunch(
        site=site,
        repository=entry.repository,
        models=entry.endpoint.models,
        grpc_port=grpc_port,
        metrics_port=metrics_port,
        http_port=int(http.rsplit(":", 1)[1]) if http else None,
        tls=tls,
        env=env,
        scratch=scratch(folder, site),
        address=_address(state, site),
    )


def _address(state: LocalState, site: str) -> str:
    """Where a site's Triton listens: loopback, or its namespace's inner address."""
    return "127.0.0.1" if state.vpn_slot is None else VpnPlan(state.vpn_slot).triton_address(site)


def _complete(state: LocalState) -> bool:
    """`up` got as far as starting both Tritons."""
    names = {*_support_names(state), *(triton_name(site) for site in SITES)}
    return names <= state.processes.keys() and set(SITES) <= state.sites.keys()


def _support_names(state: LocalState) -> tuple[str, ...]:
    """The processes the Tritons depend on: emulators, and in VPN mode charons and forwarders."""
    return EMULATORS if state.vpn_slot is None else (*EMULATORS, *vpn.PROCESSES)


def _supporting(state: LocalState) -> bool:
    """Everything but the Tritons is alive, so restarting a dead Triton is enough."""
    return all(state.processes[n].alive() for n in _support_names(state) if n in state.processes)
