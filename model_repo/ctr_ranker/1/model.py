"""Triton python model (local target only): the ctr_ranker TorchScript on CPU torch.

GPU sites serve the same TorchScript file with the pytorch_libtorch backend; here all
requests of a dynamic batch are concatenated into one forward call.
"""

import json
from pathlib import Path

import numpy as np
import torch
import triton_python_backend_utils as pb_utils

INPUTS = ("user_id", "item_id", "dense_features")


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {key: value["string_value"] for key, value in config["parameters"].items()}
        torch.set_num_threads(int(params["torch_threads"]))
        model = Path(args["model_repository"]) / args["model_version"] / params["torchscript_file"]
        self.model = torch.jit.load(str(model), map_location="cpu").eval()

    def execute(self, requests):
        batches = [
            [pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in INPUTS]
            for request in requests
        ]
        merged = [torch.from_numpy(np.concatenate(column)) for column in zip(*batches, strict=True)]
        with torch.inference_mode():
            scores = self.model(*merged).numpy()
        sizes = [len(batch[0]) for batch in batches]
        return [
            pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("click_probability", rows)])
            for rows in np.split(scores, np.cumsum(sizes)[:-1])
        ]
