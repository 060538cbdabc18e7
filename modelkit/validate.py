"""Check a rendered repository the way Triton would load it, before anything is published.

Every problem is a SourceError naming the model and the config field, so a broken source
is reported at build time instead of as a model that fails to load on a cluster.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelkit.errors import SourceError
from modelkit.triton_config import CONFIG_NAME, ModelConfig, data_type_name, read_config

_DEFAULT_FILES = {
    "python": "model.py",
    "onnxruntime_onnx": "model.onnx",
    "pytorch_libtorch": "model.pt",
    "tensorrt_plan": "model.plan",
}
_ENSEMBLE = "ensemble"


def validate_repository(root: Path) -> dict[str, ModelConfig]:
    """Parse and check every model folder under ``root``; returns the configs by model name."""
    configs = {
        folder.name: read_config(folder / CONFIG_NAME, folder.name)
        for folder in sorted(root.iterdir())
        if folder.is_dir()
    }
    for name, config in configs.items():
        _check_model(root / name, name, config)
    for name, config in configs.items():
        if _kind(config) == _ENSEMBLE:
            _check_ensemble(name, config, configs)
    return configs


def check_signature(model: str, config: ModelConfig, signature: Mapping[str, Any]) -> None:
    """The config's tensors match the exported artifact's (names, dtypes, dims incl. batch)."""
    for side, tensors in (("input", config.input), ("output", config.output)):
        expected = signature[f"{side}s"]
        names = [tensor.name for tensor in tensors]
        if sorted(names) != sorted(expected):
            raise SourceError(
                model, side, f"tensors {names} do not match the exported model's {sorted(expected)}"
            )
        for index, tensor in enumerate(tensors):
            want = expected[tensor.name]
            where = f"{side}[{index}]"
            if data_type_name(tensor.data_type) != want["data_type"]:
                raise SourceError(
                    model,
                    f"{where}.data_type",
                    f"'{tensor.name}' is {data_type_name(tensor.data_type)}, "
                    f"the exported model takes {want['data_type']}",
                )
            dims = ([-1] if config.max_batch_size > 0 else []) + list(tensor.dims)
            if not dims_agree(dims, want["dims"]):
                raise SourceError(
                    model,
                    f"{where}.dims",
                    f"'{tensor.name}' has shape {dims} (batch first), the exported model "
                    f"{want['dims']}",
                )


def _kind(config: ModelConfig) -> str:
    return config.platform or config.backend


def _check_model(folder: Path, name: str, config: ModelConfig) -> None:
    if config.name != name:
        raise SourceError(name, "name", f"is '{config.name}' but the folder is '{name}'")
    kind = _kind(config)
    if kind not in (*_DEFAULT_FILES, _ENSEMBLE):
        raise SourceError(name, "backend", f"'{kind}' is not one this project serves")
    if config.max_batch_size < 0:
        raise SourceError(name, "max_batch_size", "must be >= 0")
    for side, tensors in (("input", config.input), ("output", config.output)):
        if not tensors:
            raise SourceError(name, side, "declares no tensors")
        for index, tensor in enumerate(tensors):
            if not tensor.dims or any(d == 0 or d < -1 for d in tensor.dims):
                raise SourceError(name, f"{side}[{index}].dims", f"{list(tensor.dims)} is invalid")
    too_big = [s for s in config.dynamic_batching.preferred_batch_size if s > config.max_batch_size]
    if too_big:
        raise SourceError(
            name,
            "dynamic_batching.preferred_batch_size",
            f"{too_big} exceed max_batch_size {config.max_batch_size}",
        )
    inputs = {tensor.name: tensor for tensor in config.input}
    for index, warmup in enumerate(config.model_warmup):
        for key, sample in warmup.inputs.items():
            if key not in inputs or inputs[key].data_type != sample.data_type:
                raise SourceError(
                    name, f"model_warmup[{index}].inputs[{key}]", "names no input of that dtype"
                )
    versions = [p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()]
    if not versions:
        raise SourceError(name, "version folder", f"{folder} has no numbered version folder")
    for version in versions:
        for field, filename in _referenced_files(config):
            if not (version / filename).is_file():
                raise SourceError(name, field, f"refers to {version / filename}, which is missing")


def _referenced_files(config: ModelConfig) -> list[tuple[str, str]]:
    """(field, file name) pairs a config expects in each version folder."""
    kind = _kind(config)
    if kind == _ENSEMBLE:
        return []
    if kind == "tensorrt_plan" and config.cc_model_filenames:
        return [(f"cc_model_filenames[{cc}]", f) for cc, f in config.cc_model_filenames.items()]
    files = [("default_model_filename", config.default_model_filename or _DEFAULT_FILES[kind])]
    files += [
        (f"parameters[{key}]", value.string_value)
        for key, value in sorted(config.parameters.items())
        if key.endswith("_file")
    ]
    return files


def _check_ensemble(name: str, config: ModelConfig, configs: Mapping[str, ModelConfig]) -> None:
    """Steps call existing models; every tensor is produced before use with one dtype and shape."""
    produced = {t.name: (t.data_type, list(t.dims), "ensemble input") for t in config.input}
    for index, step in enumerate(config.ensemble_scheduling.step):
        where = f"ensemble_scheduling.step[{index}]"
        called = configs.get(step.model_name)
        if called is None:
            raise SourceError(
                name,
                f"{where}.model_name",
                f"'{step.model_name}' is not in this repository (it holds {sorted(configs)})",
            )
        if config.max_batch_size > called.max_batch_size:
            raise SourceError(
                name,
                "max_batch_size",
                f"{config.max_batch_size} exceeds step model '{step.model_name}' "
                f"max_batch_size {called.max_batch_size}",
            )
        step_inputs = {t.name: t for t in called.input}
        for key, tensor in sorted(step.input_map.items()):
            field = f"{where}.input_map[{key}]"
            if key not in step_inputs:
                raise SourceError(
                    name, field, f"'{step.model_name}' has no input '{key}' ({sorted(step_inputs)})"
                )
            if tensor not in produced:
                raise SourceError(
                    name, field, f"tensor '{tensor}' is not produced by any earlier step or input"
                )
            _check_agreement(name, field, produced[tensor], step_inputs[key], tensor)
        missing = sorted(set(step_inputs) - set(step.input_map))
        if missing:
            raise SourceError(name, f"{where}.input_map", f"leaves inputs {missing} unfed")
        step_outputs = {t.name: t for t in called.output}
        for key, tensor in sorted(step.output_map.items()):
            if key not in step_outputs:
                raise SourceError(
                    name,
                    f"{where}.output_map[{key}]",
                    f"'{step.model_name}' has no output '{key}' ({sorted(step_outputs)})",
                )
            out = step_outputs[key]
            produced[tensor] = (out.data_type, list(out.dims), f"{step.model_name}.{key}")
    for index, output in enumerate(config.output):
        field = f"output[{index}]"
        if output.name not in produced:
            raise SourceError(name, field, f"'{output.name}' is produced by no step")
        _check_agreement(name, field, produced[output.name], output, output.name)


def _check_agreement(
    model: str, field: str, produced: tuple[int, list[int], str], consumer: Any, tensor: str
) -> None:
    data_type, dims, origin = produced
    if data_type != consumer.data_type:
        raise SourceError(
            model,
            field,
            f"tensor '{tensor}' is {data_type_name(data_type)} from {origin} but "
            f"{data_type_name(consumer.data_type)} where it is used",
        )
    if not dims_agree(dims, list(consumer.dims)):
        raise SourceError(
            model,
            field,
            f"tensor '{tensor}' has dims {dims} from {origin} but {list(consumer.dims)} where used",
        )


def dims_agree(first: list[int], second: list[int]) -> bool:
    """Same rank, and every axis equal or dynamic (-1) on either side."""
    return len(first) == len(second) and all(
        a == b or -1 in (a, b) for a, b in zip(first, second, strict=True)
    )
