"""Routing policies against fake load: thresholds, hysteresis, placement, alternation."""

import pytest

from serving.endpoints import Endpoint
from serving.errors import ServingError
from serving.policies import AlternatingPolicy, BurstPolicy, FailoverPolicy, policy_named
from serving.signals import SiteLoad

PUBLIC = Endpoint("public", "127.0.0.1:1", None, None, ("text_embedding",))
PRIVATE = Endpoint("private", "127.0.0.1:2", None, None, ("text_embedding", "ctr_ranker"))
SLO = {"text_embedding": 200}


class FakeLoad:
    """Each site's estimated wait, set by the test (a queue of in-flight requests at a
    10 ms latency each: wait = 10 ms x (in_flight + 1)); public is idle unless told."""

    def __init__(self) -> None:
        self.in_flight = {"private": 0, "public": 0}

    def __call__(self, site: str, model: str) -> SiteLoad:
        return SiteLoad(in_flight=self.in_flight[site], latency_s=0.01)

    def wait_ms(self, ms: int, site: str = "private") -> None:
        self.in_flight[site] = ms // 10 - 1


def first(policy: BurstPolicy, load: FakeLoad, model: str = "text_embedding") -> tuple[str, str]:
    decision = policy.decide(model, (PUBLIC, PRIVATE), load)
    return decision.sites[0].site, decision.reason


def test_the_preferred_site_serves_until_the_threshold() -> None:
    policy, load = BurstPolicy(SLO), FakeLoad()
    load.wait_ms(60)
    assert first(policy, load) == ("private", "preferred"), "60 ms is not past 0.35 x 200 ms"
    load.wait_ms(80)
    assert first(policy, load) == ("public", "burst")
    decision = policy.decide("text_embedding", (PUBLIC, PRIVATE), load)
    assert [e.site for e in decision.sites] == ["public", "private"], "private stays a fallback"


def test_hysteresis_keeps_bursting_until_the_return_threshold() -> None:
    policy, load = BurstPolicy(SLO), FakeLoad()
    load.wait_ms(100)
    assert first(policy, load) == ("public", "burst")
    for ms in (60, 60):
        load.wait_ms(ms)
        assert first(policy, load) == ("public", "burst"), f"{ms} ms is above 0.25 x 200 ms"
    load.wait_ms(40)
    assert first(policy, load) == ("private", "preferred")
    load.wait_ms(60)
    assert first(policy, load) == ("private", "preferred"), "not bursting again below 70 ms"


def test_bursting_never_sends_to_a_site_busier_than_the_preferred_one() -> None:
    policy, load = BurstPolicy(SLO), FakeLoad()
    load.wait_ms(100)
    load.wait_ms(150, site="public")
    assert first(policy, load) == ("private", "preferred"), "public is worse: stay"
    assert policy.bursting("text_embedding"), "still over the threshold"
    load.wait_ms(50, site="public")
    assert first(policy, load) == ("public", "burst"), "public is better again"


def test_models_without_an_slo_and_single_site_requests_never_burst() -> None:
    policy, load = BurstPolicy({}), FakeLoad()
    load.wait_ms(10_000)
    assert first(policy, load) == ("private", "preferred")
    kept = BurstPolicy(SLO).decide("text_embedding", (PRIVATE,), load)
    assert kept.sites == (PRIVATE,) and kept.reason == "preferred"


def test_thresholds_follow_the_slo_and_are_checked() -> None:
    policy, load = BurstPolicy({"text_embedding": 100}), FakeLoad()
    load.wait_ms(40)
    assert first(policy, load) == ("public", "burst"), "past 0.35 x 100 ms"
    with pytest.raises(ServingError, match="return_at"):
        BurstPolicy(SLO, burst_at=0.3, return_at=0.5)


def test_the_stack_config_gives_the_slo() -> None:
    policy = policy_named("burst", "dev")
    assert isinstance(policy, BurstPolicy) and policy.slo_s == {"text_embedding": 0.2}
    assert policy.prefer == "private"
    with pytest.raises(ServingError, match="'random' is not one of"):
        policy_named("random")


def test_failover_keeps_the_order_and_alternation_takes_turns() -> None:
    load = FakeLoad()
    decision = FailoverPolicy().decide("text_embedding", (PUBLIC, PRIVATE), load)
    assert decision.sites == (PUBLIC, PRIVATE) and decision.reason == "preferred"
    alternating = AlternatingPolicy()
    firsts = [alternating.decide("m", (PUBLIC, PRIVATE), load).sites[0] for _ in range(4)]
    assert firsts == [PUBLIC, PRIVATE, PUBLIC, PRIVATE]
