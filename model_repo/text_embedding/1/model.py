"""Triton python model (local target only): text_embedding in one model, text to embedding.

GPU targets serve text_embedding as an ensemble of `tokenizer` and `minilm_encoder`. On the
local CPU target each ensemble hop is another python-backend process (a shared-memory round
trip and a second batcher), so this model tokenizes and runs the precision's ONNX graph in
one execute(): each request padded to its own length bucket, requests of one width encoded
in one onnxruntime call. The steps are `minilm_steps.py`, shared with the GPU tokenizer.
"""

import sys
from pathlib import Path

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        sys.path.insert(0, str(Path(args["model_repository"]) / args["model_version"]))
        import minilm_steps

        config, params, folder = minilm_steps.read_args(args)
        self.steps = minilm_steps
        self.tokenize = minilm_steps.Tokenize(folder, params)
        self.session = minilm_steps.encoder_session(folder, params)
        (text,) = config["input"]
        (embedding,) = config["output"]
        self.names = text["name"], embedding["name"]

    def execute(self, requests):
        text, embedding = self.names
        feeds = []
        for request in requests:
            encodings = self.tokenize.encode(
                pb_utils.get_input_tensor_by_name(request, text).as_numpy()
            )
            feeds.append(self.tokenize.padded(encodings))
        return [
            pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(embedding, rows)])
            for rows in self.steps.encode_by_width(self.session, feeds)
        ]
