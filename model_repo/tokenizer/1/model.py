"""Triton python model (GPU targets): UTF-8 text -> MiniLM token ids, padded to a bucket.

Triton's dynamic batcher merges only requests of one shape, so padding decides what the
encoder can batch: with ``one_width_per_batch`` every request of one execute() is padded
to the same bucket, and the GPU encoder receives runs of equal shapes. The GPU image has no
`tokenizers`, so the model ships it in `vendor/` (modelkit/vendor.py); the tokenizing
itself is `minilm_steps.py`, shared with the local target's fused text_embedding.
"""

import sys
from pathlib import Path

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        folder = Path(args["model_repository"]) / args["model_version"]
        for path in (folder, folder / "vendor"):  # vendor/ ends up first on sys.path
            if path.is_dir():
                sys.path.insert(0, str(path))
        import minilm_steps

        config, params, _ = minilm_steps.read_args(args)
        self.steps = minilm_steps
        self.tokenize = minilm_steps.Tokenize(folder, params)
        self.one_width = params["one_width_per_batch"] == "true"
        self.dtypes = [
            pb_utils.triton_string_to_numpy(
                pb_utils.get_output_config_by_name(config, name)["data_type"]
            )
            for name in ("input_ids", "attention_mask")
        ]

    def execute(self, requests):
        batches = [
            self.tokenize.encode(pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy())
            for request in requests
        ]
        widths = [self.tokenize.width(encodings) for encodings in batches]
        if self.one_width:
            widths = [max(widths)] * len(widths)
        return [self.response(e, width) for e, width in zip(batches, widths, strict=True)]

    def response(self, encodings, width):
        ids, mask = self.steps.pad(encodings, width, self.dtypes)
        outputs = [pb_utils.Tensor("input_ids", ids), pb_utils.Tensor("attention_mask", mask)]
        return pb_utils.InferenceResponse(output_tensors=outputs)
