"""The served embedding computed in this process: tokenizer + onnxruntime on the very files
the local Triton loads (read from the rendered text_embedding config).

It is the reference the served answers are checked against, and the baseline the serving
benchmark compares Triton with.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from hybrid.manifest import load_verified
from hybrid.paths import LOCAL, REPOS_DIR
from modelkit.minilm_steps import ENCODER_OUTPUT, Tokenize, encode_by_width, pad

MODEL = "text_embedding"
"""On the local target one python model that tokenizes and encodes: its parameters name
the tokenizer file and the ONNX graph it serves."""


def model_config(repository: Path, model: str) -> model_config_pb2.ModelConfig:
    """A rendered config.pbtxt, parsed with Triton's own schema."""
    text = (repository / model / "config.pbtxt").read_text()
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def parameters(config: model_config_pb2.ModelConfig) -> dict[str, str]:
    return {key: value.string_value for key, value in config.parameters.items()}


class InProcessEmbedder:
    """Texts -> embeddings without a server: same tokenizer file, same ONNX graph."""

    def __init__(self, repository: Path = REPOS_DIR / LOCAL, threads: int | None = None) -> None:
        load_verified(repository)
        folder = repository / MODEL / "1"
        params = parameters(model_config(repository, MODEL))
        self.tokenize = Tokenize(folder, params)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or int(params["intra_op_threads"])
        options.inter_op_num_threads = 1
        onnx = folder / params["onnx_file"]
        self.session = ort.InferenceSession(str(onnx), options, ["CPUExecutionProvider"])

    def embed(self, texts: Sequence[str], *, as_served: bool = False) -> np.ndarray:
        """One call for all ``texts``, padded to the longest; ``as_served`` pads to the
        length bucket the served model pads one request of these texts to. That matters
        for INT8: its activation scales are taken over the whole padded batch, so the same
        text comes out slightly different in another padding (cosine about 0.9993)."""
        if not texts:
            return np.zeros((0, self.session.get_outputs()[0].shape[-1]), np.float32)
        encodings = self.tokenize.tokenizer.encode_batch(list(texts))
        width = (
            self.tokenize.width(encodings)
            if as_served
            else max(len(encoding.ids) for encoding in encodings)
        )
        ids, mask = pad(encodings, width)
        (embeddings,) = self.session.run(
            [ENCODER_OUTPUT], {"input_ids": ids, "attention_mask": mask}
        )
        return np.asarray(embeddings, dtype=np.float32)

    def embed_by_width(self, texts: Sequence[str]) -> np.ndarray:
        """The served model's batching, in this process: each text padded to its own length
        bucket, texts of one width encoded in one call. Against padding all to the longest
        it saves the compute of the padding (2.0x the texts/s of 32 of the benchmark's texts)."""
        encodings = self.tokenize.tokenizer.encode_batch(list(texts))
        feeds = [self.tokenize.padded([encoding]) for encoding in encodings]
        return np.concatenate(encode_by_width(self.session, feeds)).astype(np.float32)
