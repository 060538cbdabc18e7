"""Engine plumbing: point the Pulumi runtime at a recording mock monitor, and read back
what it recorded as plain values (secrets unwrapped, unknowns as ``UNKNOWN``)."""

import json
import logging
from typing import Any

from pulumi.output import Unknown as _PulumiUnknown
from pulumi.runtime import rpc, settings
from pulumi.runtime.mocks import MockEngine, MockMonitor, Mocks
from pulumi.runtime.mocks import MockSettings as _MockSettings

from infra.offline.records import UNKNOWN, MockedResource

PROJECT = "hybrid"


def configure_runtime(stack: str, preview: bool, monitor: MockMonitor, warnings: list[str]) -> None:
    """Point the Pulumi runtime at ``monitor``, with a fresh root, as ``pulumi up`` would."""
    settings.reset_options(project=PROJECT, stack=stack, preview=preview)
    logger = logging.getLogger(f"hybrid.offline.{stack}")
    logger.propagate = False
    logger.handlers = [_ListHandler(warnings)]
    settings.configure(
        _MockSettings(
            monitor=monitor,
            monitor_features=set(monitor.GetDeploymentInfo(None).supportedFeatures),
            engine=MockEngine(logger),
            project=PROJECT,
            stack=stack,
            dry_run=preview,
            organization="organization",
            callbacks=None,
        )
    )


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage())


class RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, also keeping parent, provider and secrets of each resource."""

    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        self.records: list[MockedResource] = []
        self._stack_urn: str | None = None
        self._stack_outputs: Any = None

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            self._stack_urn = response.urn
            return response
        raw_inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
        inputs = {key: plain_value(value)[0] for key, value in raw_inputs.items()}
        secret = frozenset(key for key, value in raw_inputs.items() if plain_value(value)[1])
        state = self.resources[response.urn].state
        self.records.append(
            MockedResource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                inputs=inputs,
                outputs={key: plain_value(value)[0] for key, value in state.items()},
                parent=request.parent or None,
                provider=request.provider.rsplit("::", 1)[0] if request.provider else None,
                custom=bool(request.custom),
                secret_inputs=secret,
                id=response.id,
                dependencies=tuple(request.dependencies),
                timeouts={
                    operation: getattr(request.customTimeouts, operation)
                    for operation in ("create", "update", "delete")
                    if getattr(request.customTimeouts, operation)
                },
            )
        )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        if request.urn == self._stack_urn:
            self._stack_outputs = rpc.deserialize_properties(request.outputs, keep_unknowns=True)
        return super().RegisterResourceOutputs(request)

    def stack_outputs(self) -> tuple[dict[str, Any], set[str]]:
        raw = self._stack_outputs or {}
        plain = {key: plain_value(value) for key, value in raw.items()}
        return {k: v for k, (v, _) in plain.items()}, {k for k, (_, s) in plain.items() if s}


def plain_value(value: Any) -> tuple[Any, bool]:
    """``value`` with secret wrappers removed and unknowns as UNKNOWN; True if it held a secret."""
    if rpc.is_rpc_secret(value):
        return plain_value(rpc.unwrap_rpc_secret(value))[0], True
    if isinstance(value, _PulumiUnknown) or value == rpc.UNKNOWN:
        return UNKNOWN, False
    if isinstance(value, dict):
        items = {k: plain_value(v) for k, v in value.items()}
        return {k: v for k, (v, _) in items.items()}, any(s for _, s in items.values())
    if isinstance(value, list):
        elements = [plain_value(v) for v in value]
        return [v for v, _ in elements], any(s for _, s in elements)
    if isinstance(value, float) and value.is_integer():
        return int(value), False  # the wire only knows doubles
    return value, False


def merge(inputs: dict[str, Any], computed: dict[str, Any]) -> dict[str, Any]:
    """Inputs overlaid with computed properties, nested objects merged key by key."""
    merged = dict(inputs)
    for key, value in computed.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def unknown_like(computed: dict[str, Any]) -> dict[str, Any]:
    """The same keys, every leaf replaced by the engine's unknown marker."""
    return {
        key: unknown_like(value) if isinstance(value, dict) else rpc.UNKNOWN
        for key, value in computed.items()
    }


def engine_string(value: Any) -> str:
    """Config as the engine hands it to the program: strings as-is, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value)
