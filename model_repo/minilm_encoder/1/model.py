"""Triton python model (local target only): the exported MiniLM ONNX graph on onnxruntime.

The local Triton has only the python backend. Requests that arrive together are grouped by
padded width and each group runs as one onnxruntime call, so dynamic batching pays off.
"""

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {key: value["string_value"] for key, value in config["parameters"].items()}
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(params["intra_op_threads"])
        options.inter_op_num_threads = int(params["inter_op_threads"])
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        model = Path(args["model_repository"]) / args["model_version"] / params["onnx_file"]
        self.session = ort.InferenceSession(str(model), options, ["CPUExecutionProvider"])

    def execute(self, requests):
        inputs = [
            {
                name: pb_utils.get_input_tensor_by_name(request, name).as_numpy()
                for name in ("input_ids", "attention_mask")
            }
            for request in requests
        ]
        groups = defaultdict(list)
        for index, tensors in enumerate(inputs):
            groups[tensors["input_ids"].shape[1]].append(index)
        embeddings = [None] * len(requests)
        for members in groups.values():
            feed = {
                name: np.concatenate([inputs[i][name] for i in members])
                for name in ("input_ids", "attention_mask")
            }
            (batch,) = self.session.run(["sentence_embedding"], feed)
            sizes = [len(inputs[i]["input_ids"]) for i in members]
            for index, rows in zip(members, np.split(batch, np.cumsum(sizes)[:-1]), strict=True):
                embeddings[index] = rows
        return [
            pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("sentence_embedding", rows)])
            for rows in embeddings
        ]
