"""Routing policies: which site a request tries first, and why.

The router hands a policy the sites a request may go to (already cut down by placement and
by sensitivity) and a view of their live load; the policy orders them and names the
reason. Whatever the order, a site that errors is followed by the next one (failover).

- `FailoverPolicy`: the first site in preference order, always (the original behaviour).
- `AlternatingPolicy`: round robin over the sites (a load-blind baseline for benchmarks).
- `BurstPolicy`: the preferred site (private) while its estimated wait stays under the
  model's SLO-derived threshold, beyond it the other site whenever that one's estimated
  wait is the shorter; with hysteresis.
"""

import itertools
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from hybrid.config import load_stack_config
from serving.endpoints import Endpoint
from serving.errors import ServingError
from serving.signals import SiteLoad, estimate_wait

PREFERRED, BURST, FAILOVER, FAIL_CLOSED, UNAVAILABLE = (
    "preferred",
    "burst",
    "failover",
    "fail_closed",
    "unavailable",
)
REASONS = (PREFERRED, BURST, FAILOVER, FAIL_CLOSED, UNAVAILABLE)
"""Why a request went where it went; `fail_closed`: kept to the private site and failed
there; `unavailable`: no site of a shared model answered."""
PRIVATE_SITE = "private"
BURST_AT = 0.35
"""Start bursting when the preferred site's estimated wait passes this fraction of the SLO.
The estimate is a typical wait and the SLO bounds the p99, which runs 3 to 5 times higher
once a queue forms; 0.35 is where, measured with `make bench-burst`, the private site's
tail stays under the SLO while it still takes all it can (docs/local-mode.md has the
thresholds tried)."""
RETURN_AT = 0.25
"""Stop bursting once it is back under this fraction (the gap is the hysteresis)."""

POLICIES = ("failover", "alternating", "burst")
"""The names `policy_named` (and the CLI's --routing) accept."""

LoadView = Callable[[str, str], SiteLoad]


@dataclass(frozen=True)
class Decision:
    sites: tuple[Endpoint, ...]
    """The order to try the sites in."""
    reason: str
    """Why the first one is first: `preferred` or `burst`."""


class RoutingPolicy(Protocol):
    uses_load: bool
    """Whether the router must collect live load (and scrape /metrics) for this policy."""

    def decide(self, model: str, sites: tuple[Endpoint, ...], load: LoadView) -> Decision: ...


class FailoverPolicy:
    """Sites in the router's preference order; the next one only when a site errors."""

    uses_load = False

    def decide(self, model: str, sites: tuple[Endpoint, ...], load: LoadView) -> Decision:
        return Decision(sites, PREFERRED)


class AlternatingPolicy:
    """Each request starts at the next site in turn, whatever the load."""

    uses_load = False

    def __init__(self) -> None:
        self._turn = itertools.count()

    def decide(self, model: str, sites: tuple[Endpoint, ...], load: LoadView) -> Decision:
        start = next(self._turn) % len(sites)
        return Decision((*sites[start:], *sites[:start]), PREFERRED if start == 0 else BURST)


class BurstPolicy:
    """Preferred site first while its estimated wait is under the threshold; beyond it, the
    other site whenever its estimated wait is shorter (join the shorter expected wait).

    The threshold of a model is `burst_at` x its SLO; bursting stops once the estimate falls
    under `return_at` x the SLO. A model without an SLO is never burst.
    """

    uses_load = True

    def __init__(
        self,
        slo_ms: Mapping[str, float],
        prefer: str = PRIVATE_SITE,
        burst_at: float = BURST_AT,
        return_at: float = RETURN_AT,
    ) -> None:
        if not 0 < return_at <= burst_at:
            raise ServingError(
                f"burst thresholds need 0 < return_at ({return_at}) <= burst_at ({burst_at})"
            )
        self.slo_s = {model: ms / 1000 for model, ms in slo_ms.items()}
        self.prefer = prefer
        self.burst_at = burst_at
        self.return_at = return_at
        self._bursting: dict[str, bool] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_stack(cls, stack: str, prefer: str = PRIVATE_SITE) -> "BurstPolicy":
        """Thresholds from the stack's `hybrid:latencySloMs`."""
        return cls(load_stack_config(stack).serving.latency_slo_ms, prefer)

    def bursting(self, model: str) -> bool:
        with self._lock:
            return self._bursting.get(model, False)

    def decide(self, model: str, sites: tuple[Endpoint, ...], load: LoadView) -> Decision:
        preferred = tuple(e for e in sites if e.site == self.prefer)
        others = tuple(e for e in sites if e.site != self.prefer)
        slo = self.slo_s.get(model)
        if not preferred or not others or slo is None:
            return Decision((*preferred, *others), PREFERRED)
        wait = estimate_wait(load(self.prefer, model))
        with self._lock:
            bursting = self._bursting.get(model, False)
            if bursting and wait < self.return_at * slo:
                bursting = False
            elif not bursting and wait > self.burst_at * slo:
                bursting = True
            self._bursting[model] = bursting
        # Bursting spills to the other site only while it is the less loaded one: when the
        # requests held to the preferred site (sensitive, private-only) keep it above the
        # return threshold, the other site must not take everything else.
        if bursting and estimate_wait(load(others[0].site, model)) < wait:
            return Decision((*others, *preferred), BURST)
        return Decision((*preferred, *others), PREFERRED)


def policy_named(name: str, stack: str = "dev", prefer: Sequence[str] = ()) -> RoutingPolicy:
    """The policy a CLI flag names; burst prefers the first `prefer` site, else private."""
    if name == "failover":
        return FailoverPolicy()
    if name == "alternating":
        return AlternatingPolicy()
    if name == "burst":
        return BurstPolicy.from_stack(stack, prefer[0] if prefer else PRIVATE_SITE)
    raise ServingError(f"routing policy '{name}' is not one of {list(POLICIES)}")
