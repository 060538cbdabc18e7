"""Save a torch module as TorchScript: traced (fixed control flow) or scripted."""

import warnings
from pathlib import Path

import torch


def export_torchscript(
    module: torch.nn.Module, path: Path, example_inputs: tuple[torch.Tensor, ...] | None = None
) -> Path:
    """Trace when example inputs are given (Hugging Face models do not script), else script.

    Tracing records one path through the code, so callers check the result on inputs of
    other shapes; scripting keeps shape-generic logic such as id hashing.
    """
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notices; callers check the traced outputs
        if example_inputs is None:
            compiled = torch.jit.script(module)
        else:
            compiled = torch.jit.trace(module, example_inputs, _store_inputs=False)
    torch.jit.save(compiled, str(path))
    return path
