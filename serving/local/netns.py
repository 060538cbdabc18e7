"""The VPN mode's namespaces and links: made, checked and removed with iproute2 and nft.

The public namespace is reached from the root namespace by the access link; the private
one only by the underlay links from the public one, which carry nothing but IKE and
UDP-encapsulated ESP (an nft filter drops the rest), so the private site is reachable
only through the tunnel even if someone adds a route over the underlay.
"""

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from serving.errors import LocalStackError
from serving.local.addressing import PREFIX, SLOTS, VpnPlan

CHARON = Path("/usr/lib/ipsec/charon")
LIBIPSEC = Path("/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so")
TUN = Path("/dev/net/tun")
PACKAGES = ("strongswan-charon", "strongswan-swanctl", "libcharon-extra-plugins", "nftables")
IKE_PORTS = (500, 4500)


def unavailable() -> str | None:
    """Why the VPN mode cannot run here, in words (None when it can)."""
    missing = []
    if os.geteuid() != 0:
        missing.append(f"root (network namespaces and TUN devices; running as uid {os.geteuid()})")
    if not TUN.exists():
        missing.append(f"{TUN} (strongSwan's user-space ESP runs over a TUN device)")
    tools = {
        "ip (iproute2)": shutil.which("ip"),
        "swanctl": shutil.which("swanctl"),
        "nft": shutil.which("nft"),
        "charon": CHARON.is_file(),
        "the kernel-libipsec plugin": LIBIPSEC.is_file(),
    }
    absent = [name for name, found in tools.items() if not found]
    if absent:
        missing.append(
            f"{', '.join(absent)} (`make setup-vpn` installs {' '.join(PACKAGES)} as root)"
        )
    if not missing:
        return None
    return "the VPN network mode needs " + "; ".join(missing) + ". The loopback mode needs none."


def require() -> None:
    reason = unavailable()
    if reason:
        raise LocalStackError(reason)


def claim() -> VpnPlan:
    """The first free slot, taken by creating its public namespace (atomic: one winner)."""
    for slot in range(SLOTS):
        plan = VpnPlan(slot)
        taken = subprocess.run(
            ["ip", "netns", "add", plan.namespace("public")], capture_output=True, text=True
        )
        if taken.returncode == 0:
            return plan
    raise LocalStackError(
        f"all {SLOTS} VPN slots are taken (namespaces {PREFIX}*-public); "
        "stop other VPN stacks with `make down-local` or remove stale namespaces."
    )


def build(plan: VpnPlan) -> None:
    """Everything but the claimed public namespace: links, addresses, routes, filters."""
    public, private = plan.namespaces
    _remove_rest(plan)  # what a stack that died without `down` left of this free slot
    _ip("netns", "add", private)
    for namespace in plan.namespaces:
        _ip("-n", namespace, "link", "set", "lo", "up")
    _ip("link", "add", plan.access_link, "type", "veth", "peer", "name", "access", "netns", public)
    _ip("addr", "add", f"{plan.root_address}/30", "dev", plan.access_link)
    _ip("link", "set", plan.access_link, "up")
    _ip("-n", public, "addr", "add", f"{plan.public_access_address}/30", "dev", "access")
    _ip("-n", public, "link", "set", "access", "up")
    for guarded in plan.guarded:
        _ip("route", "add", "unreachable", guarded)
    _ip("route", "add", plan.public_inner, "via", plan.public_access_address)
    _ip("-n", public, "addr", "add", f"{plan.triton_address('public')}/32", "dev", "lo")
    _ip("-n", public, "addr", "add", f"{plan.gateway_address}/32", "dev", "lo")
    _ip("-n", private, "addr", "add", f"{plan.triton_address('private')}/32", "dev", "lo")
    for path in plan.underlays:
        _ip("-n", public, "link", "add", path.link, "type", "veth", "peer", "name", path.link,
            "netns", private)  # fmt: skip
        for namespace, address in ((public, path.public), (private, path.private)):
            _ip("-n", namespace, "addr", "add", f"{address}/{path.prefixlen}", "dev", path.link)
            _ip("-n", namespace, "link", "set", path.link, "up")
    links = ", ".join(f'"{path.link}"' for path in plan.underlays)
    ports = ", ".join(str(port) for port in IKE_PORTS)
    rules = (
        "table inet hybrid_underlay {\n"
        "  chain input {\n"
        "    type filter hook input priority 0; policy accept;\n"
        f"    iifname {{ {links} }} udp dport {{ {ports} }} accept\n"
        f"    iifname {{ {links} }} drop\n"
        "  }\n"
        "}\n"
    )
    for namespace in plan.namespaces:
        _run([*exec_in(namespace), "nft", "-f", "-"], rules)


def remove(plan: VpnPlan) -> None:
    """Delete what `claim` and `build` made; what is already gone is fine."""
    subprocess.run(["ip", "netns", "del", plan.namespace("public")], capture_output=True)
    _remove_rest(plan)


def _remove_rest(plan: VpnPlan) -> None:
    subprocess.run(["ip", "netns", "del", plan.namespace("private")], capture_output=True)
    # Deleting a namespace deletes its veth ends and their peers; these are the rest.
    subprocess.run(["ip", "link", "del", plan.access_link], capture_output=True)
    for guarded in plan.guarded:
        subprocess.run(["ip", "route", "del", "unreachable", guarded], capture_output=True)


def leftovers(plan: VpnPlan) -> list[str]:
    """What of the slot still exists on this machine, in words (empty when all is gone)."""
    found = [f"namespace {n}" for n in plan.namespaces if Path("/run/netns", n).exists()]
    found += [f"/etc/netns/{n}" for n in plan.namespaces if Path("/etc/netns", n).exists()]
    if Path("/sys/class/net", plan.access_link).exists():
        found.append(f"link {plan.access_link}")
    routes = subprocess.run(["ip", "route", "show"], capture_output=True, text=True).stdout
    found += [f"route {line}" for line in routes.splitlines() if _mentions(line, plan)]
    return found


def exec_in(namespace: str) -> list[str]:
    """The command prefix that runs a program inside `namespace`."""
    return ["ip", "netns", "exec", namespace]


def run_in(namespace: str, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*exec_in(namespace), *command], capture_output=True, text=True)


def set_link(plan: VpnPlan, site: str, link: str, up: bool) -> None:
    """Bring one link end up or down (how tests cut an underlay path)."""
    _ip("-n", plan.namespace(site), "link", "set", link, "up" if up else "down")


def _mentions(route: str, plan: VpnPlan) -> bool:
    return bool({*plan.guarded, plan.public_inner, plan.access_link} & set(route.split()))


def _ip(*args: str) -> None:
    _run(["ip", *args])


def _run(command: Sequence[str], stdin: str | None = None) -> None:
    result = subprocess.run(list(command), input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        raise LocalStackError(f"`{' '.join(command)}` failed: {result.stderr.strip()}")
