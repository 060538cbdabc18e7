"""Burst routing on the real local stack: a saturated private site spills plain requests to
public, while sensitive ones stay private (the router's counters and each Triton's own)."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from serving.clients import EmbeddingClient
from serving.local.state import LocalState
from serving.policies import BurstPolicy
from serving.routing import RetryPolicy, Router
from tests.serving.test_stack_failover import requests_seen

pytestmark = pytest.mark.local_stack

CLIENTS = 24
REQUESTS = 1200
SLO_MS = 40
"""Low enough that 24 requests in flight on one CPU Triton break it: private saturates."""


def test_a_saturated_private_site_spills_but_sensitive_requests_stay(
    local_stack: LocalState, state_dir: Path
) -> None:
    router = Router.from_state(
        state_dir / "state.json",
        policy=RetryPolicy(deadline=60.0),
        routing=BurstPolicy({"text_embedding": SLO_MS}),
        metrics_interval=0.1,
    )
    assert router.metrics is not None and set(router.metrics.sites) == {"public", "private"}
    client = EmbeddingClient(router, batch_size=1)
    before = {site: requests_seen(local_stack, site) for site in ("public", "private")}

    def request(i: int) -> None:
        client.embed([f"lightweight rain jacket {i}"], sensitive=i % 5 == 0)

    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(request, range(REQUESTS)))
    finally:
        router.close()
    counts = router.decisions()
    sensitive = {key: n for key, n in counts.items() if key[3]}
    plain = {key[:3]: n for key, n in counts.items() if not key[3]}
    assert sensitive == {("private", "text_embedding", "preferred", True): REQUESTS // 5}
    assert plain.get(("public", "text_embedding", "burst"), 0) > 0, f"no spill: {counts}"
    assert plain.get(("private", "text_embedding", "preferred"), 0) > 0, "private kept serving"
    assert sum(counts.values()) == REQUESTS
    seen = {site: requests_seen(local_stack, site) for site in ("public", "private")}
    public = seen["public"]["text_embedding"] - before["public"]["text_embedding"]
    private = seen["private"]["text_embedding"] - before["private"]["text_embedding"]
    assert public == router.attempts[("public", "text_embedding")], "public saw only plain ones"
    assert private >= REQUESTS // 5 + plain[("private", "text_embedding", "preferred")]
