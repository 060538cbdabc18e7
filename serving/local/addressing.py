"""The VPN network mode's addressing plan: every address and interface name, from a slot.

Everything comes from the benchmarking range 198.18.0.0/15 (RFC 2544), which no real
network uses, and lives in namespaces the local stack made. Each running VPN stack takes
one slot, so stacks started from different folders never share an address:

    slot n (0..63)            public half 198.18.4n.0/22      private half 198.19.4n.0/22
    public inner range        198.18.4n.0/24     .1 public Triton, .2 gateway to private
    access link (veth)        198.18.(4n+1).0/30 .1 root namespace, .2 public namespace
    underlay path k (veth)    198.18.(4n+2).4k/30 .4k+1 public, .4k+2 private
    private inner range       198.19.4n.0/24     .1 private Triton

The root namespace routes only the public inner range (via the access link); both halves
of the slot are otherwise `unreachable` there, so a stray packet to them fails at once
instead of leaving the machine by the default route.
"""

import ipaddress
from dataclasses import dataclass

BENCHMARKING = ipaddress.IPv4Network("198.18.0.0/15")
SLOTS = 64
TUNNELS = 2
"""Two underlay paths, one tunnel each: the local stand-in for HA VPN's redundancy."""
PREFIX = "hyb"
"""Namespaces and root-side links are named `hyb<slot>-...`: how `down` and tests find them."""


@dataclass(frozen=True)
class Underlay:
    """One underlay path and the tunnel over it."""

    index: int
    public: str
    private: str
    prefixlen: int = 30

    @property
    def name(self) -> str:
        """The tunnel's name (swanctl connection and child), also the links' name."""
        return f"tunnel-{self.index}"

    @property
    def link(self) -> str:
        """The veth end's name inside either namespace."""
        return f"under{self.index}"


@dataclass(frozen=True)
class VpnPlan:
    slot: int

    def __post_init__(self) -> None:
        if not 0 <= self.slot < SLOTS:
            raise ValueError(f"slot {self.slot} is outside 0..{SLOTS - 1}")

    def namespace(self, site: str) -> str:
        return f"{PREFIX}{self.slot}-{site}"

    @property
    def namespaces(self) -> tuple[str, str]:
        return self.namespace("public"), self.namespace("private")

    @property
    def access_link(self) -> str:
        """The access veth's end in the root namespace (the other end is `access`)."""
        return f"{PREFIX}{self.slot}-access"

    @property
    def root_address(self) -> str:
        return self._address(0, 4 * self.slot + 1, 1)

    @property
    def public_access_address(self) -> str:
        return self._address(0, 4 * self.slot + 1, 2)

    @property
    def public_inner(self) -> str:
        return f"{self._address(0, 4 * self.slot, 0)}/24"

    @property
    def private_inner(self) -> str:
        return f"{self._address(1, 4 * self.slot, 0)}/24"

    def triton_address(self, site: str) -> str:
        """Where a site's Triton listens: its namespace's inner address, nowhere else."""
        return self._address(0 if site == "public" else 1, 4 * self.slot, 1)

    @property
    def gateway_address(self) -> str:
        """The private site's entrance in the public namespace, forwarded through the tunnel."""
        return self._address(0, 4 * self.slot, 2)

    @property
    def guarded(self) -> tuple[str, str]:
        """The slot's two /22 halves, `unreachable` in the root namespace."""
        return (
            f"{self._address(0, 4 * self.slot, 0)}/22",
            f"{self._address(1, 4 * self.slot, 0)}/22",
        )

    @property
    def underlays(self) -> tuple[Underlay, ...]:
        third = 4 * self.slot + 2
        return tuple(
            Underlay(k, self._address(0, third, 4 * k + 1), self._address(0, third, 4 * k + 2))
            for k in range(TUNNELS)
        )

    @staticmethod
    def _address(half: int, third: int, fourth: int) -> str:
        return str(BENCHMARKING.network_address + (half << 16) + (third << 8) + fourth)
