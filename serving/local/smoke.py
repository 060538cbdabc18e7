"""After `up`: ask each site a real question and check its answer against this process.

Each site must return the in-process embedding of the same texts, padded as the site pads
them (cosine >= 0.9999, for either precision); the
private site must also rank. A site that answers wrongly fails the smoke test, so `up`
never reports a healthy stack that serves something else than the rendered artifact.
"""

from dataclasses import dataclass

import numpy as np

from serving.clients import RANKER_MODEL, EmbeddingClient, RankerClient
from serving.errors import ServingError
from serving.inprocess import InProcessEmbedder
from serving.local.state import LocalState
from serving.routing import RetryPolicy, Router

SAMPLE = ("cheap running shoes", "affordable sneakers")
SAMPLE_ITEMS = (11, 22, 33)
MIN_AGREEMENT = 0.9999


@dataclass(frozen=True)
class SiteSmoke:
    site: str
    similarity: float
    """Cosine similarity of the two sample texts, as served by the site."""
    agreement: float
    """Lowest cosine between the site's embeddings and the in-process ones."""
    ranking: list[tuple[int, float]] | None
    """Items ranked by the site, where the ranker is placed."""


def smoke(state: LocalState, reference: InProcessEmbedder) -> list[SiteSmoke]:
    expected = reference.embed(list(SAMPLE), as_served=True)
    results = []
    for name, site in state.sites.items():
        router = Router([site.endpoint], policy=RetryPolicy(deadline=20.0))
        try:
            served = EmbeddingClient(router).embed(list(SAMPLE))
            agreement = float(np.min(np.sum(served * expected, axis=1)))
            if agreement < MIN_AGREEMENT:
                raise ServingError(
                    f"site '{name}' serves embeddings that differ from the rendered artifact "
                    f"(cosine {agreement:.6f} < {MIN_AGREEMENT}); rebuild with `make models` "
                    "and restart with `make down-local up-local`."
                )
            ranking = None
            if RANKER_MODEL in site.endpoint.models:
                ranker = RankerClient(router)
                ranking = ranker.rank(7, SAMPLE_ITEMS, ranker.neutral_context(len(SAMPLE_ITEMS)))
        finally:
            router.close()
        similarity = float(served[0] @ served[1])
        results.append(SiteSmoke(name, similarity, agreement, ranking))
    return results
