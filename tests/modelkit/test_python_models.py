"""The local target's python-backend models, driven the way Triton drives them.

``triton_python_backend_utils`` only exists inside Triton, so a minimal stand-in provides
the few calls the models make; the models read the rendered config.pbtxt and the rendered
files, and their answers are checked against the artifacts called directly.
"""

import importlib.util
import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from google.protobuf import json_format

from modelkit import ranker
from modelkit.tokenization import load_tokenizer, tokenize
from modelkit.triton_config import CONFIG_NAME, read_config
from modelkit.tuning import LENGTH_BUCKETS, LOCAL_LENGTH_BUCKETS, LOCAL_TUNING

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")


class Tensor:
    def __init__(self, name: str, array: np.ndarray) -> None:
        self.name, self.array = name, array

    def as_numpy(self) -> np.ndarray:
        return self.array


class InferenceResponse:
    def __init__(self, output_tensors: list[Tensor]) -> None:
        self.outputs = {tensor.name: tensor.array for tensor in output_tensors}


def _pb_utils() -> types.ModuleType:
    module = types.ModuleType("triton_python_backend_utils")
    module.Tensor = Tensor  # type: ignore[attr-defined]
    module.InferenceResponse = InferenceResponse  # type: ignore[attr-defined]
    module.get_input_tensor_by_name = lambda request, name: request[name]  # type: ignore[attr-defined]
    module.get_output_config_by_name = lambda config, name: next(  # type: ignore[attr-defined]
        o for o in config["output"] if o["name"] == name
    )
    module.triton_string_to_numpy = lambda name: {"TYPE_INT64": np.int64}[name]  # type: ignore[attr-defined]
    return module


def _load(repo: Path, model: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", _pb_utils())
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # keep the rendered repo pristine
    spec = importlib.util.spec_from_file_location(f"triton_{model}", repo / model / "1/model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = json_format.MessageToDict(
        read_config(repo / model / CONFIG_NAME, model), preserving_proto_field_name=True
    )
    instance = module.TritonPythonModel()
    instance.initialize(
        {
            "model_config": json.dumps(config),
            "model_repository": str(repo / model),
            "model_version": "1",
        }
    )
    return instance


def _request(**arrays: np.ndarray) -> dict[str, Tensor]:
    return {name: Tensor(name, array) for name, array in arrays.items()}


class RecordingSession:
    """An onnxruntime session that keeps every feed it was run with."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session, self.feeds = session, []

    def run(self, names, feed):
        self.feeds.append(feed)
        return self.session.run(names, feed)


def test_local_text_embedding_pads_each_request_to_its_bucket_and_encodes_it(
    repos, monkeypatch
) -> None:
    """One execute(): each request tokenized and padded to its own bucket (truncated at
    128), equal widths encoded in one call, each answered with the graph's embedding."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # the model adds its version folder
    model = _load(repos["local"], "text_embedding", monkeypatch)
    model.session = RecordingSession(model.session)
    batches = [["red shoes"], ["a somewhat longer product title " * 3, "x"], ["hat"], ["w " * 500]]
    requests = [
        _request(TEXT=np.array([[t.encode()] for t in texts], dtype=object)) for texts in batches
    ]
    responses = model.execute(requests)
    assert len(responses) == len(requests)
    widths = [feed["input_ids"].shape[1] for feed in model.session.feeds]
    assert len(widths) == len(set(widths)) < len(requests), "one call per width"
    session = ort.InferenceSession(str(repos["local"] / "text_embedding/1/model.onnx"))
    tokenizer = load_tokenizer()
    for texts, response in zip(batches, responses, strict=True):
        ids, mask = tokenize(tokenizer, texts)
        width = min(b for b in LOCAL_LENGTH_BUCKETS if b >= ids.shape[1])
        assert width in widths and ids.shape[1] <= 128
        padded = [np.pad(a, ((0, 0), (0, width - a.shape[1]))) for a in (ids, mask)]
        (expected,) = session.run(
            None, dict(zip(("input_ids", "attention_mask"), padded, strict=True))
        )
        embedding = response.outputs["EMBEDDING"]
        assert embedding.shape == (len(texts), 384) and embedding.dtype == np.float32
        np.testing.assert_allclose(embedding, expected, atol=1e-5)


def test_the_local_encoder_runs_on_the_rendered_threads_and_spin(repos, monkeypatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    options = _load(repos["local"], "text_embedding", monkeypatch).session.get_session_options()
    tuning = LOCAL_TUNING["text_embedding"]
    assert options.intra_op_num_threads == tuning.threads
    entry = options.get_session_config_entry
    assert entry("session.intra_op.allow_spinning") == str(int(tuning.spin_us > 0))
    assert entry("session.intra_op.spin_duration_us") == str(tuning.spin_us)


def test_the_local_encoder_never_runs_more_threads_than_its_cores(repos, monkeypatch) -> None:
    """A site pinned to one core (CORES=dedicated) runs one onnxruntime thread."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    model = _load(repos["local"], "text_embedding", monkeypatch)
    assert model.session.get_session_options().intra_op_num_threads == 1


def test_gpu_tokenizer_pads_one_batch_to_one_width(repos, monkeypatch) -> None:
    """The GPU encoder's batcher merges only equal shapes: one execute() gives one width."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # the model adds its vendor folder
    model = _load(repos["public"], "tokenizer", monkeypatch)
    batches = [["red shoes"], ["a somewhat longer product title " * 6], ["x", "yy"]]
    requests = [
        _request(TEXT=np.array([[t.encode()] for t in texts], dtype=object)) for texts in batches
    ]
    widths = {r.outputs["input_ids"].shape[1] for r in model.execute(requests)}
    longest = max(tokenize(load_tokenizer(), texts)[0].shape[1] for texts in batches)
    assert widths == {min(b for b in LENGTH_BUCKETS if b >= longest)}


def test_gpu_encoders_take_one_shape_per_batch_and_local_has_none(repos) -> None:
    """The GPU backends need one shape per batch (the tokenizer provides it); the local
    target tokenizes and encodes inside text_embedding, so it has no encoder model."""
    for target in ("public", "private"):
        config = read_config(repos[target] / "minilm_encoder" / CONFIG_NAME, "minilm_encoder")
        assert [tensor.allow_ragged_batch for tensor in config.input] == [False, False]
    assert not (repos["local"] / "minilm_encoder").exists()
    assert not (repos["local"] / "tokenizer").exists()


def test_ranker_scores_each_request_like_the_torchscript_model(repos, monkeypatch) -> None:
    model = _load(repos["local"], "ctr_ranker", monkeypatch)
    rng = np.random.default_rng(0)
    requests = [
        _request(
            user_id=rng.integers(0, 10**6, (n, 1)),
            item_id=rng.integers(0, 10**6, (n, 1)),
            dense_features=rng.normal(size=(n, ranker.N_DENSE)).astype(np.float32),
        )
        for n in (1, 5, 2)
    ]
    responses = model.execute(requests)
    scripted = torch.jit.load(str(repos["local"] / "ctr_ranker/1/model.pt"))
    for request, response in zip(requests, responses, strict=True):
        with torch.inference_mode():
            expected = scripted(*(torch.from_numpy(t.array) for t in request.values())).numpy()
        np.testing.assert_allclose(response.outputs["click_probability"], expected, atol=1e-6)
