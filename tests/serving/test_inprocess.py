"""The in-process embedder's batching by width: the served model's batching, same answers."""

import numpy as np

from modelkit.quality import cosines
from serving.inprocess import InProcessEmbedder

TEXTS = [
    "cheap running shoes",
    "a lightweight waterproof rain jacket for travel with free shipping and a two year "
    "warranty, rated highly by customers",
    "desk lamp",
    "ergonomic office chair for small apartments",
]


def test_batching_by_width_keeps_the_order_and_each_texts_own_padding(
    reference: InProcessEmbedder,
) -> None:
    batched = reference.embed_by_width(TEXTS)
    one_by_one = [reference.embed([text], as_served=True)[0] for text in TEXTS]
    assert batched.shape == (len(TEXTS), 384)
    assert cosines(batched, np.stack(one_by_one)).min() > 0.99999
    widths = {
        reference.tokenize.width(reference.tokenize.tokenizer.encode_batch([t])) for t in TEXTS
    }
    assert len(widths) > 1, "the texts span several length buckets"
