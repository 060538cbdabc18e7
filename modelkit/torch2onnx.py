"""Export a torch module to a single-file ONNX graph with dynamic axes."""

import contextlib
import io
import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch


def export_onnx(
    module: torch.nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    path: Path,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: Mapping[str, Mapping[int, str]],
) -> Path:
    """Export with the dynamo exporter; ``dynamic_axes`` maps input name -> {axis: dim name}.

    Weights are stored inside the file (no external data), so the graph is one object in a
    bucket; the exporter is deterministic, so equal inputs give byte-equal files.
    """
    dims: dict[str, torch.export.Dim] = {}
    shapes = {
        name: {axis: dims.setdefault(dim, torch.export.Dim(dim)) for axis, dim in axes.items()}
        for name, axes in dynamic_axes.items()
    }
    chatter = io.StringIO()
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # e.g. "torchvision is not installed" notices
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(chatter):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                example_inputs,
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_shapes=shapes,
                dynamo=True,
                verbose=False,
            )
            if program is None:
                raise RuntimeError(f"the ONNX exporter returned nothing:\n{chatter.getvalue()}")
            program.save(str(path), external_data=False)
    finally:
        exporter_log.setLevel(level)
    return path
