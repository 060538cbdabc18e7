"""Triton model configs as typed protobuf messages: parse a source, adjust it, render it.

Working on ``model_config_pb2.ModelConfig`` (the message Triton itself parses) instead of
text means a rendered config cannot have a misspelt field, and rendering is
deterministic (fields in declaration order, map keys sorted).
"""

import re
from collections.abc import Mapping
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from modelkit.errors import SourceError
from modelkit.tuning import Tuning

CONFIG_NAME = "config.pbtxt"
ModelConfig = mc.ModelConfig
KIND_CPU = mc.ModelInstanceGroup.KIND_CPU
KIND_GPU = mc.ModelInstanceGroup.KIND_GPU
_UNKNOWN_FIELD = re.compile(r'has no field named "?(\w+)')


def read_config(path: Path, model: str) -> mc.ModelConfig:
    """Parse one config.pbtxt; a SourceError names the model and the offending field."""
    try:
        text = path.read_text()
    except OSError as error:
        raise SourceError(model, CONFIG_NAME, f"cannot read {path} ({error.strerror})") from error
    try:
        return text_format.Parse(text, mc.ModelConfig())
    except text_format.ParseError as error:
        field = _failing_field(text, error)
        raise SourceError(model, field, f"{path} does not parse: {error}") from error


def _failing_field(text: str, error: text_format.ParseError) -> str:
    """The field a parse error is about: named in the message, or the last key before it."""
    unknown = _UNKNOWN_FIELD.search(str(error))
    if unknown:
        return unknown.group(1)
    line, column = error.GetLine(), error.GetColumn()
    if line and column:
        before = text.splitlines()[line - 1][: column - 1]
        key = re.findall(r"(\w+)\s*:", before)
        if key:
            return key[-1]
    return f"{CONFIG_NAME} line {line}"


def render_config(config: mc.ModelConfig) -> str:
    return text_format.MessageToString(config, use_short_repeated_primitives=True)


def set_parameters(config: mc.ModelConfig, values: Mapping[str, object]) -> None:
    """String parameters a python-backend model.py reads in ``initialize``."""
    for key, value in values.items():
        config.parameters[key].string_value = str(value)


def apply_tuning(config: mc.ModelConfig, tuning: Tuning, kind: int) -> None:
    """Instance group and dynamic batching from a tuning table row."""
    del config.instance_group[:]
    config.instance_group.add(kind=kind, count=tuning.instances)
    batching = config.dynamic_batching
    batching.SetInParent()  # dynamic batching on, even with all defaults (no queue delay)
    batching.preferred_batch_size[:] = list(tuning.preferred_batch_sizes)
    batching.max_queue_delay_microseconds = tuning.max_queue_delay_us


def add_zero_warmup(config: mc.ModelConfig, batch_size: int, dims: Mapping[str, list[int]]) -> None:
    """A warmup request of zeros, so the first real request does not pay for lazy init.

    Zeros are valid for every input here: id 0 is a real table row / the [PAD] token, and
    an all-zero attention mask pools to a zero vector without dividing by zero.
    """
    warmup = config.model_warmup.add(name=f"zeros_batch{batch_size}", batch_size=batch_size)
    for tensor in config.input:
        sample = warmup.inputs[tensor.name]
        sample.data_type = tensor.data_type
        sample.dims[:] = dims.get(tensor.name, list(tensor.dims))
        sample.zero_data = True


def data_type_name(value: int) -> str:
    return mc.DataType.Name(value)
