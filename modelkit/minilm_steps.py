"""text_embedding's two steps, shared by the python-backend models that run them.

Triton imports a ``model.py`` from the repository, not from this package, so modelkit ships
this file into the version folder of each model.py that uses it (``SHIPPED_AS``): the
``tokenizer`` of the GPU targets, and the local target's ``text_embedding``, which tokenizes
and encodes in one ``execute``. The GPU image has numpy but neither ``tokenizers`` (vendored
next to it) nor onnxruntime, so those are imported only by the helpers that need them.
"""

import json
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

SHIPPED_AS = "minilm_steps.py"
ENCODER_INPUTS = ("input_ids", "attention_mask")
ENCODER_OUTPUT = "sentence_embedding"
"""The exported graph's tensor names (modelkit/torch2onnx.py)."""


def read_args(args: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str], Path]:
    """The model config, its string parameters, and the version folder, from ``initialize``."""
    config = json.loads(args["model_config"])
    params = {key: value["string_value"] for key, value in config["parameters"].items()}
    return config, params, Path(args["model_repository"]) / args["model_version"]


class Tokenize:
    """UTF-8 texts -> MiniLM token ids, truncated and padded to a length bucket."""

    def __init__(self, folder: Path, params: Mapping[str, str]) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(folder / params["tokenizer_file"]))
        self.tokenizer.enable_truncation(int(params["max_sequence_length"]))
        self.tokenizer.no_padding()
        self.buckets = sorted(int(width) for width in params["length_buckets"].split(","))

    def encode(self, texts: np.ndarray) -> list[Any]:
        """One request's TEXT tensor (bytes, any shape) -> one encoding per text."""
        return self.tokenizer.encode_batch(
            [text.decode("utf-8", errors="replace") for text in texts.reshape(-1)]
        )

    def width(self, encodings: Sequence[Any]) -> int:
        """The smallest bucket that holds the longest of ``encodings``."""
        longest = max(len(encoding.ids) for encoding in encodings)
        return next(bucket for bucket in self.buckets if bucket >= longest)

    def padded(self, encodings: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """One request's encodings as the encoder's feed, padded to that request's bucket."""
        return pad(encodings, self.width(encodings))


def pad(
    encodings: Sequence[Any], width: int, dtypes: Sequence[Any] = (np.int64, np.int64)
) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask, zero-padded to ``width``."""
    ids = np.zeros((len(encodings), width), dtypes[0])
    mask = np.zeros((len(encodings), width), dtypes[1])
    for row, encoding in enumerate(encodings):
        ids[row, : len(encoding.ids)] = encoding.ids
        mask[row, : len(encoding.ids)] = 1
    return ids, mask


def encoder_session(folder: Path, params: Mapping[str, str]) -> Any:
    """The precision's ONNX graph on onnxruntime, with the rendered thread budget.

    Idle intra-op threads spin for ``intra_op_spin_us`` before they sleep: long enough to
    start each parallel section of a run without a wake-up, short enough to leave the cores
    to the rest of the server between runs (modelkit/tuning.py). Never more threads than
    the cores this process may run on: a site pinned to one core (``make up-local
    CORES=dedicated``) would have its threads wait for each other on it.
    """
    import onnxruntime as ort

    spin_us = int(params["intra_op_spin_us"])
    options = ort.SessionOptions()
    options.intra_op_num_threads = min(
        int(params["intra_op_threads"]), len(os.sched_getaffinity(0))
    )
    options.inter_op_num_threads = int(params["inter_op_threads"])
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", str(int(spin_us > 0)))
    options.add_session_config_entry("session.intra_op.spin_duration_us", str(spin_us))
    model = folder / params["onnx_file"]
    return ort.InferenceSession(str(model), options, ["CPUExecutionProvider"])


def encode_by_width(session: Any, feeds: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[Any]:
    """Embeddings of each (ids, mask) feed: feeds of one padded width run as one call."""
    groups: dict[int, list[int]] = defaultdict(list)
    for index, (ids, _) in enumerate(feeds):
        groups[ids.shape[1]].append(index)
    embeddings: list[Any] = [None] * len(feeds)
    for members in groups.values():
        merged = {
            name: np.concatenate([feeds[i][column] for i in members])
            for column, name in enumerate(ENCODER_INPUTS)
        }
        (batch,) = session.run([ENCODER_OUTPUT], merged)
        sizes = [len(feeds[i][0]) for i in members]
        for index, rows in zip(members, np.split(batch, np.cumsum(sizes)[:-1]), strict=True):
            embeddings[index] = rows
    return embeddings
