"""The VPN network mode for real: the private site is reachable only through its IKEv2
tunnels, a tunnel cut mid-run loses no request, a private-only model fails closed while
no tunnel is up, disagreeing IKE settings are named, and `down` leaves nothing behind."""

import dataclasses
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from hybrid.vpn import VPN_SETTINGS, AlgorithmSet, IkeSettings
from serving.clients import EmbeddingClient, RankerClient
from serving.errors import SiteUnavailableError
from serving.inprocess import InProcessEmbedder
from serving.local import ipsec, netns, stack
from serving.local.addressing import VpnPlan
from serving.local.ipsec import TunnelError
from serving.local.repository import LOCAL_REPOSITORY, site_manifests
from serving.local.state import LocalState, read_state
from serving.routing import RetryPolicy, Router
from tests.serving.conftest import run_local
from tests.serving.test_stack_failover import requests_seen
from tests.serving.test_stack_teardown import make, processes_under

REASON = netns.unavailable()
pytestmark = [pytest.mark.local_stack, pytest.mark.skipif(REASON is not None, reason=str(REASON))]

REQUESTS = 2000
CUT_AFTER = 300
TEXTS = [f"query {i}: waterproof hiking boots size {i % 13}" for i in range(50)]


def plan_of(state: LocalState) -> VpnPlan:
    assert state.vpn_slot is not None, "the stack runs in VPN mode"
    return VpnPlan(state.vpn_slot)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not within {timeout:.0f}s"
        time.sleep(0.25)


def tunnels_up(folder: Path, state: LocalState) -> list[str]:
    return list(stack.health(state, folder)["vpn"]["up"])


def esp_packets(folder: Path) -> dict[str, int]:
    """ESP packets each tunnel carried, both ways, as the public site's charon counts them."""
    return {
        name: t.packets_in + t.packets_out for name, t in ipsec.tunnels(folder, "public").items()
    }


def connect_from(namespace: str, host: str, port: int) -> str:
    """Try a TCP connection from inside `namespace`: 'connected' or the error's name."""
    probe = (
        "import socket,sys\n"
        "try:\n"
        f"    socket.create_connection(({host!r}, {port}), timeout=2); print('connected')\n"
        "except OSError as e:\n"
        "    print(type(e).__name__, e.errno)\n"
    )
    return netns.run_in(namespace, sys.executable, "-c", probe).stdout.strip()


def assert_ranker_fails_closed(state: LocalState, state_dir: Path) -> None:
    public_before = requests_seen(state, "public")
    policy = RetryPolicy(deadline=3.0, attempt_timeout=1.0)
    router = Router.from_state(state_dir / "state.json", policy=policy, prefer=["public"])
    try:
        with pytest.raises(SiteUnavailableError) as raised:
            RankerClient(router).score([7], [11], np.zeros((1, 8), np.float32))
        assert raised.value.sites == ("private",)
        assert router.attempts[("public", "ctr_ranker")] == 0
    finally:
        router.close()
    seen = requests_seen(state, "public") - public_before
    assert "ctr_ranker" not in seen, f"public counted ranker requests: {seen}"


@pytest.fixture(scope="module")
def vpn_dir(rendered: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("vpn-stack")
    run_local(folder, "up", "--network", "vpn")
    yield folder
    run_local(folder, "down")


@pytest.fixture
def vpn_stack(vpn_dir: Path) -> Iterator[LocalState]:
    """The module's VPN stack with both tunnels up; links restored after each test."""
    state = read_state(vpn_dir)
    assert state is not None
    yield state
    if read_state(vpn_dir) is None:  # the last test stopped it
        return
    plan = plan_of(state)
    for site in ("public", "private"):
        for path in plan.underlays:
            netns.set_link(plan, site, path.link, up=True)
    # The public site re-initiates what dead-peer detection closed, once its path is back.
    wait_for(lambda: len(tunnels_up(vpn_dir, state)) == len(plan.underlays), "both tunnels")


@pytest.mark.parametrize(
    ("private", "named"),
    [
        (
            dataclasses.replace(VPN_SETTINGS, phase1=AlgorithmSet("aes128", "sha256", 14)),
            "phase 1 encryption: aes256 vs aes128",
        ),
        (
            dataclasses.replace(VPN_SETTINGS, phase2=AlgorithmSet("aes256", "sha512", 14)),
            "phase 2 integrity: sha256 vs sha512",
        ),
    ],
    ids=["phase1", "phase2"],
)
def test_disagreeing_algorithm_sets_fail_to_establish_and_say_which_setting(
    private: IkeSettings, named: str, tmp_path: Path
) -> None:
    console = Console(record=True, width=200)
    before = set(Path("/run/netns").iterdir()) if Path("/run/netns").is_dir() else set()
    with pytest.raises(TunnelError) as raised:
        stack.up("dev", LOCAL_REPOSITORY, site_manifests("dev"), tmp_path, console,
                 network="vpn", settings={"public": VPN_SETTINGS, "private": private})  # fmt: skip
    message = str(raised.value)
    assert message.count("did not establish") == 2, "both tunnels are reported"
    assert "NO_PROPOSAL_CHOSEN" in message and named in message, message
    assert read_state(tmp_path) is None, "a failed up forgets what it started"
    after = set(Path("/run/netns").iterdir()) if Path("/run/netns").is_dir() else set()
    assert not {p for p in after - before if p.name.startswith("hyb")}, "no namespace left"


def test_the_root_namespace_reaches_the_private_site_only_through_the_tunnel(
    vpn_stack: LocalState, vpn_dir: Path, reference: InProcessEmbedder
) -> None:
    plan = plan_of(vpn_stack)
    private = plan.triton_address("private")
    route = subprocess.run(["ip", "route", "get", private], capture_output=True, text=True)
    assert route.returncode != 0, f"the root namespace has a route to {private}: {route.stdout}"
    assert vpn_stack.sites["private"].endpoint.grpc.startswith(f"{plan.gateway_address}:")
    before = esp_packets(vpn_dir)
    router = Router.from_state(vpn_dir / "state.json", prefer=["private"])
    try:
        served = EmbeddingClient(router, batch_size=1).embed(TEXTS[:20])
        ranked = RankerClient(router).rank(7, [1, 2, 3], np.zeros((3, 8), np.float32))
    finally:
        router.close()
    assert router.attempts[("public", "text_embedding")] == 0, "all went to private"
    assert min(np.sum(served * reference.embed(TEXTS[:20]), axis=1)) >= 0.9999
    assert len(ranked) == 3
    after = esp_packets(vpn_dir)
    rise = sum(after.values()) - sum(before.values())
    assert rise >= 2 * 21, f"ESP counters rose by {rise} packets for 21 private requests"


def test_with_no_tunnel_the_private_triton_is_unreachable_from_outside_its_namespace(
    vpn_stack: LocalState, vpn_dir: Path
) -> None:
    plan = plan_of(vpn_stack)
    public, _ = plan.namespaces
    port = int(vpn_stack.sites["private"].endpoint.grpc.rsplit(":", 1)[1])
    private = plan.triton_address("private")
    assert connect_from(public, private, port) == "connected", "through the tunnel"
    uri = f"unix://{ipsec.vici(vpn_dir, 'public')}"
    for path in plan.underlays:
        subprocess.run(["swanctl", "--terminate", "--ike", path.name, "--uri", uri],
                       capture_output=True, check=True)  # fmt: skip
    try:
        wait_for(lambda: not tunnels_up(vpn_dir, vpn_stack), "no tunnel up", 20)
        root = subprocess.run(["ip", "route", "get", private], capture_output=True, text=True)
        assert root.returncode != 0, f"the root namespace routes {private}: {root.stdout}"
        assert connect_from(public, private, port).startswith("OSError 101"), "no route"
        underlay = plan.underlays[0]
        forced = ["ip", "-n", public, "route", "add", f"{private}/32", "via", underlay.private]
        subprocess.run(forced, check=True)
        try:
            assert connect_from(public, private, port).startswith("TimeoutError"), (
                "the private site drops everything but IKE arriving on the underlay"
            )
        finally:
            subprocess.run(["ip", "-n", public, "route", "del", f"{private}/32"], check=True)
        assert not stack.health(vpn_stack, vpn_dir)["sites"]["private"]["ready"], "via gateway"
        assert_ranker_fails_closed(vpn_stack, vpn_dir)
    finally:  # an explicit terminate is not restarted by dead-peer detection
        ipsec.establish(vpn_dir, plan, dict.fromkeys(("public", "private"), VPN_SETTINGS))


def test_cutting_one_tunnel_mid_run_loses_no_request_and_the_other_carries_on(
    vpn_stack: LocalState, vpn_dir: Path, reference: InProcessEmbedder
) -> None:
    plan = plan_of(vpn_stack)
    expected = reference.embed(TEXTS)
    router = Router.from_state(
        vpn_dir / "state.json", policy=RetryPolicy(deadline=60.0), prefer=["private"]
    )
    client = EmbeddingClient(router, batch_size=1)
    before = esp_packets(vpn_dir)
    client.embed(TEXTS[:5])
    probe = esp_packets(vpn_dir)
    active = max(probe, key=lambda name: probe[name] - before.get(name, 0))
    (survivor,) = [p.name for p in plan.underlays if p.name != active]
    cut = next(path for path in plan.underlays if path.name == active)
    done = threading.Semaphore(0)
    at_cut: dict[str, int] = {}

    def request(i: int) -> np.ndarray:
        (embedding,) = client.embed([TEXTS[i % len(TEXTS)]])
        done.release()
        return embedding

    def cutter() -> None:
        for _ in range(CUT_AFTER):
            done.acquire()
        at_cut.update(esp_packets(vpn_dir))
        netns.set_link(plan, "private", cut.link, up=False)

    thread = threading.Thread(target=cutter)
    thread.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            served = list(pool.map(request, range(REQUESTS)))
    finally:
        thread.join(timeout=120)
        router.close()
    assert len(served) == REQUESTS, "zero requests lost"
    cosines = [float(s @ expected[i % len(TEXTS)]) for i, s in enumerate(served)]
    assert min(cosines) >= 0.9999
    wait_for(lambda: tunnels_up(vpn_dir, vpn_stack) == [survivor], f"DPD closing {active}", 30)
    after = esp_packets(vpn_dir)
    assert after[survivor] > at_cut.get(survivor, 0), f"traffic moved to {survivor}"
    private = router.attempts[("private", "text_embedding")]
    assert private >= REQUESTS - router.attempts[("public", "text_embedding")]

    other = next(path for path in plan.underlays if path.name == survivor)
    netns.set_link(plan, "private", other.link, up=False)
    wait_for(lambda: not tunnels_up(vpn_dir, vpn_stack), "DPD closing both tunnels", 30)
    assert_ranker_fails_closed(vpn_stack, vpn_dir)


def test_status_local_shows_the_tunnels_and_their_sas(vpn_stack: LocalState, vpn_dir: Path) -> None:
    result = make("status-local", vpn_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    for word in ("VPN tunnels", "tunnel-0", "tunnel-1", "ESTABLISHED", "INSTALLED", "2 up"):
        assert word in result.stdout, f"status-local lacks '{word}'"


def test_down_local_leaves_no_namespace_link_tun_or_charon_behind(
    vpn_stack: LocalState, vpn_dir: Path
) -> None:
    plan = plan_of(vpn_stack)
    charons = [vpn_stack.processes[ipsec.process_name(site)] for site in ("public", "private")]
    assert all(charon.alive() for charon in charons)
    result = make("down-local", vpn_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert netns.leftovers(plan) == [], "namespaces, links, routes, /etc/netns entries"
    assert not any(charon.alive() for charon in charons)
    assert not processes_under(vpn_dir)
    tuns = [p.parent.name for p in Path("/sys/class/net").glob("*/tun_flags")]
    assert not [name for name in tuns if name.startswith(("ipsec", f"hyb{plan.slot}-"))], tuns
    assert read_state(vpn_dir) is None
