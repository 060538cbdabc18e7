"""The cost guard: estimate from the pools themselves, advisory when over budget."""

import pytest

from hybrid.gpus import GPU_TYPES
from infra.offline import MockedResource
from policy.cost import GPU_COST_BUDGET, estimate
from policy.engine import stack_view
from policy.gpu_prices import HOURS_PER_MONTH, PRICES
from tests.policy.builders import resource, violations

EKS_L4 = {
    "amiType": "AL2023_x86_64_NVIDIA",
    "instanceTypes": ["g6.12xlarge"],
    "capacityType": "SPOT",
    "scalingConfig": {"minSize": 1, "maxSize": 3, "desiredSize": 1},
}
GKE_A100 = {
    "location": "us-central1",
    "nodeLocations": ["us-central1-a", "us-central1-b"],
    "autoscaling": {"minNodeCount": 0, "maxNodeCount": 2},
    "nodeConfig": {
        "machineType": "a2-highgpu-2g",
        "guestAccelerators": [{"type": "nvidia-tesla-a100", "count": 2}],
    },
}
CPU_POOL = {
    "nodeConfig": {"machineType": "e2-standard-4"},
    "autoscaling": {"totalMinNodeCount": 1, "totalMaxNodeCount": 3},
}


def pools() -> list[MockedResource]:
    return [
        resource("aws:eks/nodeGroup:NodeGroup", "l4", EKS_L4),
        resource("gcp:container/nodePool:NodePool", "a100", GKE_A100),
        resource("gcp:container/nodePool:NodePool", "cpu", CPU_POOL),
    ]


def test_estimate_prices_each_gpu_pool() -> None:
    cost = estimate(stack_view(pools()).values())
    l4_spot = PRICES[("l4", "aws")].spot * HOURS_PER_MONTH
    a100 = PRICES[("a100-40gb", "gcp")].on_demand * HOURS_PER_MONTH
    # g6.12xlarge carries 4 GPUs; per-zone GKE limits count once per zone (two here).
    assert [(p.name, p.gpu, p.gpus_per_node, p.min_nodes, p.max_nodes) for p in cost.pools] == [
        ("l4", "l4", 4, 1, 3),
        ("a100", "a100-40gb", 2, 0, 4),
    ]
    assert cost.min_monthly == pytest.approx(4 * l4_spot)
    assert cost.max_monthly == pytest.approx(12 * l4_spot + 8 * a100)


EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
GKE_NODE_POOL = "gcp:container/nodePool:NodePool"
# GCE attaches an accelerator-optimized machine's own GPUs, whatever count the pool asks for.
GKE_G2_48 = {
    **GKE_A100,
    "nodeConfig": {
        "machineType": "g2-standard-48",
        "guestAccelerators": [{"type": "nvidia-l4", "count": 1}],
    },
}
GKE_N1_T4 = {
    **GKE_A100,
    "nodeConfig": {
        "machineType": "n1-standard-16",
        "guestAccelerators": [{"type": "nvidia-tesla-t4", "count": 2}],
    },
}


@pytest.mark.parametrize(
    ("type_", "props", "gpu", "gpus_per_node"),
    [
        (EKS_NODE_GROUP, {**EKS_L4, "instanceTypes": ["g4dn.metal"]}, "t4", 8),
        (EKS_NODE_GROUP, {**EKS_L4, "instanceTypes": ["p5.4xlarge"]}, "h100-80gb", 1),
        (GKE_NODE_POOL, GKE_G2_48, "l4", 4),
        (GKE_NODE_POOL, GKE_N1_T4, "t4", 2),
    ],
)
def test_estimate_bills_the_gpus_a_machine_really_carries(
    type_: str, props: dict[str, object], gpu: str, gpus_per_node: int
) -> None:
    [pool] = estimate(stack_view([resource(type_, "pool", props)]).values()).pools
    assert (pool.gpu, pool.gpus_per_node) == (gpu, gpus_per_node)


def test_within_budget_passes() -> None:
    assert violations(GPU_COST_BUDGET, *pools(), config={"monthlyBudgetUsd": 100_000}) == []


def test_over_budget_is_advisory() -> None:
    [violation] = violations(GPU_COST_BUDGET, *pools(), config={"monthlyBudgetUsd": 5000})
    assert violation.enforcement == "advisory"
    assert not violation.mandatory
    assert violation.message == (
        "estimated GPU cost at max scale is $24,516/month (min scale $1,022), above the budget "
        "of $5,000; lower the pools' maxSize, use spot, or raise hybrid:gpuBudgetUsdPerMonth"
    )


def test_unpriced_gpus_and_missing_budget_are_reported() -> None:
    odd = resource(
        "aws:eks/nodeGroup:NodeGroup",
        "odd",
        {**EKS_L4, "instanceTypes": ["p2.xlarge"], "amiType": "AL2_x86_64_GPU"},
    )
    assert [v.message for v in violations(GPU_COST_BUDGET, odd)] == [
        "GPU pool 'odd' (unknown on aws) has no price in policy/gpu_prices.py, so the estimate "
        "leaves it out",
        "no budget to compare with: the pack was not given 'monthlyBudgetUsd'",
    ]


def test_every_catalog_gpu_has_a_price_on_every_cloud_that_sells_it() -> None:
    expected = {(g.name, "aws") for g in GPU_TYPES.values() if g.aws_instance_families}
    expected |= {(g.name, "gcp") for g in GPU_TYPES.values() if g.gcp_accelerator}
    assert set(PRICES) == expected
    assert all(0 < p.spot < p.on_demand for p in PRICES.values())
