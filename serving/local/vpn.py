"""The VPN network mode: each site in its own namespace, joined by two IKEv2 tunnels.

    root namespace        public namespace                       private namespace
    clients, emulators -> public Triton, gateway  == tunnel-0 => private Triton
         (access link)    charon                  == tunnel-1 => charon

Clients in the root namespace reach the public Triton directly and the private Triton only
at the gateway, a forwarder in the public namespace whose far side is the private inner
address: a route exists there only while a tunnel's CHILD_SA is installed.
"""

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hybrid.vpn import VPN_SETTINGS, IkeSettings, generate_psk
from serving.errors import LocalStackError
from serving.local import ipsec, netns, processes
from serving.local.addressing import VpnPlan
from serving.local.forwarder import Side, route
from serving.local.processes import Process
from serving.local.state import PROJECT_ROOT

SITES = ("public", "private")
GATEWAY = "vpn-gateway"


def storage_bridge(site: str) -> str:
    return f"storage-{site}"


PROCESSES = (*map(ipsec.process_name, SITES), GATEWAY, *map(storage_bridge, SITES))
"""Every process the VPN mode adds to the stack's."""


def up(
    folder: Path,
    claimed: Callable[[VpnPlan], None],
    record: Callable[[Process], None],
    settings: Mapping[str, IkeSettings] | None = None,
) -> VpnPlan:
    """Namespaces, links and both tunnels, established; `claimed` records the slot at once,
    so an interrupted start can still be cleaned up."""
    netns.require()
    settings = settings or dict.fromkeys(SITES, VPN_SETTINGS)
    plan = netns.claim()
    claimed(plan)
    netns.build(plan)
    keys = {path.name: generate_psk() for path in plan.underlays}
    for site in SITES:
        ipsec.write_config(folder, plan, site, settings[site], keys)
        record(ipsec.start_charon(folder, plan, site))
        ipsec.load(folder, site)
    ipsec.establish(folder, plan, settings)
    return plan


def start_forwarders(
    folder: Path,
    plan: VpnPlan,
    storage: Mapping[str, int],
    private_ports: tuple[int, ...],
    record: Callable[[Process], None],
) -> None:
    """The gateway to the private site's ports, and each site's bridge to its storage port."""
    public = plan.namespace("public")
    gateway = [
        route(
            Side(public, plan.gateway_address, port),
            Side(public, plan.triton_address("private"), port),
        )
        for port in private_ports
    ]
    started = [_forwarder(folder, GATEWAY, gateway)]
    for site, port in storage.items():
        bridge = route(Side(plan.namespace(site), "127.0.0.1", port), Side("", "127.0.0.1", port))
        started.append(_forwarder(folder, storage_bridge(site), [bridge]))
    for process in started:
        record(process)
    processes.wait_until(
        lambda: all("forwarding" in Path(p.log).read_text() for p in started),
        started,
        "the VPN forwarders",
        15.0,
    )


def down(plan: VpnPlan) -> list[str]:
    """Remove the slot's namespaces, links and routes (its processes are stopped first);
    returns what could not be removed."""
    netns.remove(plan)
    return netns.leftovers(plan)


def health(folder: Path, plan: VpnPlan) -> dict[str, Any]:
    """Each tunnel's SA state and ESP counters as both sites' charons see them."""
    names = [path.name for path in plan.underlays]
    sites: dict[str, Any] = {}
    up = set(names)
    for site in SITES:
        try:
            tunnels = ipsec.tunnels(folder, site)
        except LocalStackError as error:  # a dead charon is reported, not raised
            sites[site] = {"error": str(error)}
            up.clear()
            continue
        sites[site] = {name: vars(tunnel) for name, tunnel in tunnels.items()}
        up &= {name for name, tunnel in tunnels.items() if tunnel.up}
    return {
        "slot": plan.slot,
        "namespaces": list(plan.namespaces),
        "tunnels": names,
        "up": sorted(up),
        "sites": sites,
    }


def _forwarder(folder: Path, name: str, routes: list[str]) -> Process:
    """A forwarder running this very checkout's code, whatever the caller's directory."""
    command = [sys.executable, "-m", "serving.local.forwarder", *routes]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return processes.start(name, command, folder / "logs" / f"{name}.log", env)
