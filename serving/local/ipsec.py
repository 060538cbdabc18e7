"""strongSwan for the VPN mode: one charon per site namespace, ESP in user space over TUN.

The kernel here has no XFRM, so charon's kernel-libipsec plugin does ESP itself over a
TUN device (always UDP-encapsulated, port 4500). Each charon gets its own
strongswan.conf (via STRONGSWAN_CONF), VICI socket and, bound over /run inside its own
mount namespace, its own pid file: nothing is written under /etc or the shared /run.

The proposals are `hybrid.vpn`'s one algorithm set in strongSwan's spelling. The tunnels
are pinned to their underlay path (no MOBIKE), like HA VPN tunnels to their interfaces,
and dead-peer detection removes a dead tunnel's SAs within seconds, which moves the
traffic to the other tunnel (both carry the same traffic selectors).
"""

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybrid.vpn import IkeSettings, disagreements, strongswan_proposals
from serving.errors import LocalStackError
from serving.local import processes
from serving.local.addressing import Underlay, VpnPlan
from serving.local.netns import CHARON, exec_in
from serving.local.processes import Process

PLUGINS = (
    "random nonce aes sha1 sha2 hmac gmp kdf kernel-libipsec kernel-netlink socket-default vici"
)
DPD_DELAY = 1
"""Seconds without traffic from the peer before a liveness check."""
RETRANSMIT = {"retransmit_timeout": 0.5, "retransmit_base": 1.4, "retransmit_tries": 3}
"""A dead peer is declared after 0.5 + 0.7 + 0.98 + 1.37 s of unanswered checks (~3.6 s)."""
INITIATE_TIMEOUT = 15
SOCKET_PATH_MAX = 107
"""sun_path holds 108 bytes, the terminating NUL included."""
READY_TIMEOUT = 15.0


class TunnelError(LocalStackError):
    """A tunnel did not establish; the message says which setting or path is at fault."""


@dataclass(frozen=True)
class TunnelState:
    """One tunnel as one site's charon sees it."""

    name: str
    ike: str
    """IKE SA state (ESTABLISHED, CONNECTING, ...), or "down" when there is none."""
    child: str
    """CHILD_SA state (INSTALLED, ...), or "none"."""
    local: str
    remote: str
    packets_in: int
    packets_out: int
    bytes_in: int
    bytes_out: int

    @property
    def up(self) -> bool:
        return self.ike == "ESTABLISHED" and self.child == "INSTALLED"


def process_name(site: str) -> str:
    return f"charon-{site}"


def site_folder(folder: Path, site: str) -> Path:
    return folder / "vpn" / site


def vici(folder: Path, site: str) -> Path:
    return site_folder(folder, site) / "charon.vici"


def write_config(
    folder: Path,
    plan: VpnPlan,
    site: str,
    settings: IkeSettings,
    keys: Mapping[str, str],
) -> None:
    """strongswan.conf and swanctl.conf (keys included, so mode 0600) for one site."""
    if len(str(vici(folder, site))) > SOCKET_PATH_MAX:
        raise LocalStackError(
            f"{vici(folder, site)} is too long for a Unix socket ({SOCKET_PATH_MAX} bytes at "
            "most); use a shorter --state-dir (LOCAL_DIR) for the VPN mode."
        )
    here = site_folder(folder, site)
    (here / "run").mkdir(parents=True, exist_ok=True)
    here.chmod(0o700)
    (here / "strongswan.conf").write_text(strongswan_conf(vici(folder, site)))
    swanctl = here / "swanctl.conf"
    swanctl.unlink(missing_ok=True)
    swanctl.touch(mode=0o600)
    swanctl.write_text(swanctl_conf(plan, site, settings, keys))


def strongswan_conf(socket: Path) -> str:
    retransmit = "\n".join(f"  {key} = {value}" for key, value in RETRANSMIT.items())
    return f"""charon {{
  load = {PLUGINS}
  install_routes = yes
{retransmit}
  plugins {{
    vici {{
      socket = unix://{socket}
    }}
  }}
  filelog {{
    stderr {{
      default = 1
      time_format = %T
    }}
  }}
}}
swanctl {{
  load = nonce
}}
"""


def swanctl_conf(plan: VpnPlan, site: str, settings: IkeSettings, keys: Mapping[str, str]) -> str:
    """One connection per underlay path; the public site initiates and restarts dead ones."""
    ike, esp = strongswan_proposals(settings)
    public = site == "public"
    local_ts, remote_ts = plan.public_inner, plan.private_inner
    if not public:
        local_ts, remote_ts = remote_ts, local_ts
    connections, secrets = [], []
    for path in plan.underlays:
        local, remote = (path.public, path.private) if public else (path.private, path.public)
        connections.append(f"""  {path.name} {{
    version = {settings.version}
    local_addrs = {local}
    remote_addrs = {remote}
    proposals = {ike}
    mobike = no
    dpd_delay = {DPD_DELAY}s
    keyingtries = 0
    local {{
      auth = psk
      id = {local}
    }}
    remote {{
      auth = psk
      id = {remote}
    }}
    children {{
      {path.name} {{
        local_ts = {local_ts}
        remote_ts = {remote_ts}
        esp_proposals = {esp}
        dpd_action = {"restart" if public else "clear"}
        start_action = none
      }}
    }}
  }}""")
        secrets.append(f"""  ike-{path.name} {{
    id-public = {path.public}
    id-private = {path.private}
    secret = "{keys[path.name]}"
  }}""")
    return (
        "connections {\n"
        + "\n".join(connections)
        + "\n}\nsecrets {\n"
        + "\n".join(secrets)
        + "\n}\n"
    )


def start_charon(folder: Path, plan: VpnPlan, site: str) -> Process:
    """charon inside the site's namespace, /run replaced by its own folder (its pid file)."""
    here = site_folder(folder, site)
    command = [
        *exec_in(plan.namespace(site)),
        "sh", "-c", 'mount --bind "$1" /run && exec "$2"', "charon", str(here / "run"),
        str(CHARON),
    ]  # fmt: skip
    log = folder / "logs" / f"charon-{site}.log"
    process = processes.start(process_name(site), command, log, _environment(folder, site))
    processes.wait_until(
        lambda: _swanctl(folder, site, "--stats").returncode == 0,
        [process],
        f"charon ({site})",
        READY_TIMEOUT,
    )
    return process


def load(folder: Path, site: str) -> None:
    conf = site_folder(folder, site) / "swanctl.conf"
    result = _swanctl(folder, site, "--load-all", "--noprompt", "--file", str(conf))
    if result.returncode != 0:
        raise LocalStackError(f"swanctl could not load {conf}: {result.stdout}{result.stderr}")


def establish(folder: Path, plan: VpnPlan, settings: Mapping[str, IkeSettings]) -> None:
    """Initiate every tunnel from the public site; all must come up, else say why not."""
    failures = []
    for path in plan.underlays:
        result = _swanctl(
            folder, "public", "--initiate", "--child", path.name,
            "--timeout", str(INITIATE_TIMEOUT),
        )  # fmt: skip
        if result.returncode != 0 or "initiate completed successfully" not in result.stdout:
            failures.append(_diagnose(path, result.stdout + result.stderr, settings))
    if failures:
        raise TunnelError("\n".join(failures))


def tunnels(folder: Path, site: str) -> dict[str, TunnelState]:
    """Each tunnel's IKE and CHILD SA state and ESP counters, from the site's charon."""
    result = _swanctl(folder, site, "--list-sas", "--raw")
    if result.returncode != 0:
        raise LocalStackError(f"charon ({site}) does not answer: {result.stderr.strip()}")
    found: dict[str, TunnelState] = {}
    for line in result.stdout.splitlines():
        if not line.startswith("list-sa event "):
            continue
        for name, sa in parse_raw(line.removeprefix("list-sa event ")).items():
            state = _tunnel_state(name, sa)
            if name not in found or state.up:
                found[name] = state
    return found


def parse_raw(text: str) -> dict[str, Any]:
    """swanctl's `--raw` output (`key=value`, `name {...}`, `key=[a b]`) as nested dicts."""
    root: dict[str, Any] = {}
    stack = [root]
    for match in _RAW.finditer(text):
        if match["open"]:
            section: dict[str, Any] = {}
            stack[-1][match["open"]] = section
            stack.append(section)
        elif match["close"]:
            stack.pop()
        else:
            value = match["value"]
            listed = value.startswith("[")
            stack[-1][match["key"]] = value.strip("[]").split() if listed else value
    return root


_RAW = re.compile(
    r"(?P<open>[^\s{}=]+) \{|(?P<close>\})|(?P<key>[^\s{}=]+)=(?P<value>\[[^\]]*\]|[^\s{}]*)"
)


def _tunnel_state(name: str, sa: dict[str, Any]) -> TunnelState:
    children = [c for c in sa.get("child-sas", {}).values() if c.get("name") == name]
    installed = [c for c in children if c.get("state") == "INSTALLED"]

    def total(key: str) -> int:
        return sum(int(c.get(key, 0)) for c in children)

    return TunnelState(
        name=name,
        ike=sa.get("state", "down"),
        child="INSTALLED" if installed else (children[0]["state"] if children else "none"),
        local=sa.get("local-host", ""),
        remote=sa.get("remote-host", ""),
        packets_in=total("packets-in"),
        packets_out=total("packets-out"),
        bytes_in=total("bytes-in"),
        bytes_out=total("bytes-out"),
    )


def _diagnose(path: Underlay, output: str, settings: Mapping[str, IkeSettings]) -> str:
    """Why a tunnel did not establish, in plain words, from charon's initiation log."""
    differ = disagreements(settings["public"], settings["private"])
    where = f"{path.name} ({path.public} -> {path.private})"
    if "NO_PROPOSAL_CHOSEN" in output or "no acceptable proposal" in output:
        phase = "phase 1 (IKE)" if "IKE_SA_INIT" in _failed_exchange(output) else "phase 2 (ESP)"
        detail = "; ".join(differ) or "(the generated settings agree; see the charon logs)"
        return (
            f"{where} did not establish: the private site rejected the public site's "
            f"{phase} proposal (NO_PROPOSAL_CHOSEN). The two ends disagree (public vs private) "
            f"on {detail}. "
            "Both must use the one algorithm set in hybrid/vpn.py (VPN_SETTINGS)."
        )
    if "AUTHENTICATION_FAILED" in output:
        return f"{where} did not establish: the two ends hold different pre-shared keys."
    if "giving up" in output or "timeout" in output.lower():
        return (
            f"{where} did not establish: the private site at {path.private} did not answer "
            "IKE (is the underlay link down?)."
        )
    tail = "\n".join(output.strip().splitlines()[-6:])
    return f"{where} did not establish:\n{tail}"


def _failed_exchange(output: str) -> str:
    """The exchange whose response carried the error ("IKE_SA_INIT" or "IKE_AUTH")."""
    parsed = re.findall(r"parsed (IKE_SA_INIT|IKE_AUTH) response", output)
    return parsed[-1] if parsed else ""


def _swanctl(folder: Path, site: str, *args: str) -> subprocess.CompletedProcess[str]:
    uri = f"unix://{vici(folder, site)}"
    return subprocess.run(
        ["swanctl", *args, "--uri", uri],
        capture_output=True,
        text=True,
        env=_environment(folder, site),
        timeout=INITIATE_TIMEOUT + 15,
    )


def _environment(folder: Path, site: str) -> dict[str, str]:
    conf = site_folder(folder, site) / "strongswan.conf"
    return {**os.environ, "STRONGSWAN_CONF": str(conf)}
