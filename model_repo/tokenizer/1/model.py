"""Triton python model: UTF-8 text -> MiniLM token ids, truncated and padded to a length bucket.

Triton's dynamic batcher merges only requests of one shape (unless the next model takes
ragged batches), so padding decides what the encoder can batch. With ``one_width_per_batch``
every request of one execute() is padded to the same bucket, and the GPU encoder receives
runs of equal shapes. The CPU target pads each request to its own bucket (padding costs
compute one for one there) and lets the encoder take ragged batches. The GPU image has no
`tokenizers`, so the cloud targets ship it in `vendor/` (modelkit/vendor.py).
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
        self.one_width = params["one_width_per_batch"] == "true"
        self.dtypes = {
            name: pb_utils.triton_string_to_numpy(
                pb_utils.get_output_config_by_name(config, name)["data_type"]
            )
            for name in ("input_ids", "attention_mask")
        }

    def execute(self, requests):
        batches = [
            self.tokenizer.encode_batch(
                [text.decode("utf-8", errors="replace") for text in texts.reshape(-1)]
            )
            for texts in (pb_utils.get_input_tensor_by_name(r, "TEXT").as_numpy() for r in requests)
        ]
        widths = [self.bucket(max(len(e.ids) for e in encodings)) for encodings in batches]
        if self.one_width:
            widths = [max(widths)] * len(widths)
        return [
            self.response(encodings, width)
            for encodings, width in zip(batches, widths, strict=True)
        ]

    def bucket(self, length):
        return next(bucket for bucket in self.buckets if bucket >= length)

    def response(self, encodings, width):
        ids = np.zeros((len(encodings), width), self.dtypes["input_ids"])
        mask = np.zeros((len(encodings), width), self.dtypes["attention_mask"])
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        outputs = [pb_utils.Tensor("input_ids", ids), pb_utils.Tensor("attention_mask", mask)]
        return pb_utils.InferenceResponse(output_tensors=outputs)
