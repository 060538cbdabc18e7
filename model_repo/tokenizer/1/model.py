"""Triton python model: UTF-8 text -> MiniLM token ids, truncated and padded to a length bucket.

Padding every request to one of a few bucket widths (not to its own longest text) lets the
encoder's dynamic batcher merge requests of similar length into one batch. The GPU Triton
image has no `tokenizers`, so the cloud targets ship it in `vendor/` next to this file
(modelkit/vendor.py); the local Triton uses the project's venv.
"""

import json
import sys
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {key: value["string_value"] for key, value in config["parameters"].items()}
        folder = Path(args["model_repository"]) / args["model_version"]
        vendor = folder / "vendor"
        if vendor.is_dir():
            sys.path.insert(0, str(vendor))
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(folder / params["tokenizer_file"]))
        self.tokenizer.enable_truncation(int(params["max_sequence_length"]))
        self.tokenizer.no_padding()
        self.buckets = sorted(int(width) for width in params["length_buckets"].split(","))
        self.dtypes = {
            name: pb_utils.triton_string_to_numpy(
                pb_utils.get_output_config_by_name(config, name)["data_type"]
            )
            for name in ("input_ids", "attention_mask")
        }

    def execute(self, requests):
        responses = []
        for request in requests:
            texts = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy().reshape(-1)
            encodings = self.tokenizer.encode_batch(
                [text.decode("utf-8", errors="replace") for text in texts]
            )
            longest = max(len(encoding.ids) for encoding in encodings)
            width = next(bucket for bucket in self.buckets if bucket >= longest)
            ids = np.zeros((len(encodings), width), self.dtypes["input_ids"])
            mask = np.zeros((len(encodings), width), self.dtypes["attention_mask"])
            for row, encoding in enumerate(encodings):
                ids[row, : len(encoding.ids)] = encoding.ids
                mask[row, : len(encoding.ids)] = 1
            outputs = [pb_utils.Tensor("input_ids", ids), pb_utils.Tensor("attention_mask", mask)]
            responses.append(pb_utils.InferenceResponse(output_tensors=outputs))
        return responses
