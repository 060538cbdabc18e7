"""The cost guard: what the stack's GPU pools cost a month at their smallest and largest.

The estimate reads the node groups and node pools themselves (not the stack config), so it
prices what would really be deployed. It is advisory: a budget overrun is a conversation,
not a broken build.
"""

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, PolicyResource, Severity

from hybrid.gpus import GPU_TYPES, GpuType, carried_by
from policy.clusters import EKS_NODE_GROUP, GKE_NODE_POOL, is_eks_gpu_group, is_gke_gpu_pool
from policy.gpu_prices import HOURS_PER_MONTH, PRICES
from policy.props import as_number, get, items
from policy.rules import StackPolicy, StackRule

BUDGET_KEY = "monthlyBudgetUsd"
ZONES_PER_REGION = 3  # a regional GKE pool without nodeLocations spreads over three zones


@dataclass(frozen=True)
class PoolCost:
    cloud: str
    name: str
    gpu: str
    gpus_per_node: int
    min_nodes: int
    max_nodes: int
    spot: bool
    usd_per_gpu_hour: float | None
    """None when the price table has no row for this GPU on this cloud."""

    def monthly(self, nodes: int) -> float:
        return nodes * self.gpus_per_node * (self.usd_per_gpu_hour or 0.0) * HOURS_PER_MONTH


@dataclass(frozen=True)
class CostEstimate:
    pools: tuple[PoolCost, ...]

    @property
    def min_monthly(self) -> float:
        return sum(p.monthly(p.min_nodes) for p in self.pools)

    @property
    def max_monthly(self) -> float:
        return sum(p.monthly(p.max_nodes) for p in self.pools)

    @property
    def unpriced(self) -> tuple[PoolCost, ...]:
        return tuple(p for p in self.pools if p.usd_per_gpu_hour is None)


def estimate(resources: Iterable[PolicyResource]) -> CostEstimate:
    pools = []
    for resource in resources:
        if resource.resource_type == EKS_NODE_GROUP and is_eks_gpu_group(resource.props):
            pools.append(_eks_pool(resource.name, resource.props))
        elif resource.resource_type == GKE_NODE_POOL and is_gke_gpu_pool(resource.props):
            pools.append(_gke_pool(resource.name, resource.props))
    return CostEstimate(tuple(pools))


def _eks_pool(name: str, props: Mapping[str, Any]) -> PoolCost:
    instance = str(items(get(props, "instanceTypes"))[0]) if get(props, "instanceTypes") else ""
    gpu, count = carried_by("aws", instance) or (None, 1)
    return _priced(
        "aws",
        name,
        gpu,
        gpus_per_node=count,
        min_nodes=int(as_number(get(props, "scalingConfig", "minSize"))),
        max_nodes=int(as_number(get(props, "scalingConfig", "maxSize"))),
        spot=get(props, "capacityType") == "SPOT",
    )


def _gke_pool(name: str, props: Mapping[str, Any]) -> PoolCost:
    accelerators = items(get(props, "nodeConfig", "guestAccelerators"))
    machine = str(get(props, "nodeConfig", "machineType", default=""))
    attached = sum(int(as_number(get(a, "count", default=1))) for a in accelerators) or 1
    accelerator = get(accelerators[0], "type") if accelerators else None
    # An accelerator-optimized machine carries its own GPUs, whatever the pool attaches;
    # an N1 machine has what guestAccelerators attaches.
    gpu, count = carried_by("gcp", machine) or (_attached_gpu(accelerator), attached)
    low, high = _gke_node_range(props)
    return _priced(
        "gcp",
        name,
        gpu,
        gpus_per_node=count,
        min_nodes=low,
        max_nodes=high,
        spot=get(props, "nodeConfig", "spot") is True
        or get(props, "nodeConfig", "preemptible") is True,
    )


def _attached_gpu(accelerator: str | None) -> GpuType | None:
    return next((g for g in GPU_TYPES.values() if g.gcp_accelerator == accelerator), None)


def _gke_node_range(props: Mapping[str, Any]) -> tuple[int, int]:
    """Whole-pool node counts: GKE's total limits, or per-zone limits times the zones."""
    scaling = get(props, "autoscaling")
    if scaling is not None and get(scaling, "totalMaxNodeCount") is not None:
        return (
            int(as_number(get(scaling, "totalMinNodeCount"))),
            int(as_number(get(scaling, "totalMaxNodeCount"))),
        )
    zones = len(items(get(props, "nodeLocations"))) or _zones_of(get(props, "location"))
    if scaling is not None:
        low, high = get(scaling, "minNodeCount"), get(scaling, "maxNodeCount")
    else:
        low = high = get(props, "nodeCount", default=get(props, "initialNodeCount", default=1))
    return int(as_number(low)) * zones, int(as_number(high)) * zones


def _zones_of(location: Any) -> int:
    """``us-central1-a`` is one zone; ``us-central1`` (regional) spreads over three."""
    return 1 if str(location or "").count("-") >= 2 else ZONES_PER_REGION


def _priced(cloud: str, name: str, gpu: GpuType | None, **sizes: Any) -> PoolCost:
    price = PRICES.get((gpu.name, cloud)) if gpu else None
    return PoolCost(
        cloud=cloud,
        name=name,
        gpu=gpu.name if gpu else "unknown",
        usd_per_gpu_hour=price.hourly(sizes["spot"]) if price else None,
        **sizes,
    )


def usd(amount: float) -> str:
    return f"${amount:,.0f}"


def _over_budget(
    resources: Sequence[PolicyResource], config: Mapping[str, Any]
) -> Iterator[tuple[str, str | None]]:
    cost = estimate(resources)
    for pool in cost.unpriced:
        yield (
            f"GPU pool '{pool.name}' ({pool.gpu} on {pool.cloud}) has no price in "
            "policy/gpu_prices.py, so the estimate leaves it out",
            None,
        )
    budget = config.get(BUDGET_KEY)
    if budget is None:
        yield f"no budget to compare with: the pack was not given '{BUDGET_KEY}'", None
    elif cost.max_monthly > as_number(budget):
        yield (
            f"estimated GPU cost at max scale is {usd(cost.max_monthly)}/month (min scale "
            f"{usd(cost.min_monthly)}), above the budget of {usd(as_number(budget))}; lower "
            "the pools' maxSize, use spot, or raise hybrid:gpuBudgetUsdPerMonth",
            None,
        )


GPU_COST_BUDGET = StackPolicy(
    "gpu-cost-budget",
    "The stack's estimated monthly GPU cost at max scale stays within its budget.",
    Severity.LOW,
    [StackRule("cross-cloud", "max-scale GPU cost within budget", _over_budget)],
    enforcement_level=EnforcementLevel.ADVISORY,
    config_schema=PolicyConfigSchema({BUDGET_KEY: {"type": "number", "minimum": 0}}),
)
