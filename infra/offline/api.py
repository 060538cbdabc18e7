"""Run the real stack program, or one component, in-process under Pulumi mocks: no CLI,
no cloud, no credentials.

``evaluate_stack("prod")`` reads ``Pulumi.prod.yaml`` (with the project's defaults),
validates it, runs ``infra/__main__.py`` against a recording mock monitor and returns
every registered resource with its inputs (camelCase, as the engine receives them) and
the outputs the mocks fabricated for it. The fabricated outputs look like the real
ones - ARNs, EKS OIDC issuers, VPN tunnel outside and inside addresses, HA VPN
interface IPs, service-agent emails - so that tests can follow the wiring from one
resource to the next. With ``preview=True`` every computed output stays unknown, as in
``pulumi preview`` before anything exists.

``evaluate_component(lambda: GcpNetwork("private", args))`` runs one component alone, with
the given args, under the same mocks (the stack file only sets the fabricated account,
project and regions). Tests, the offline policy review and the benchmark all use this one
harness; it can run several evaluations one after another in the same process.
"""

import asyncio
import runpy
import time
from collections.abc import Callable, Mapping
from typing import Any

from pulumi.runtime import settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_in_stack

from hybrid.config import StackConfig, parse_stack_config, read_stack_file
from hybrid.paths import PROJECT_ROOT
from infra.offline.engine import RecordingMonitor, configure_runtime, engine_string
from infra.offline.records import StackEvaluation
from infra.offline.registry import FabricatingMocks

PROGRAM = PROJECT_ROOT / "infra" / "__main__.py"


def evaluate_stack(
    stack: str, *, preview: bool = False, config_overrides: Mapping[str, Any] | None = None
) -> StackEvaluation:
    """Run ``infra/__main__.py`` for ``stack`` under mocks and return what it registered.

    ``config_overrides`` replaces stack config values (native Python values; ``None``
    removes a key). A bad config raises ``ConfigError`` before anything runs.
    """
    raw = read_stack_file(stack)
    for key, value in (config_overrides or {}).items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    config = parse_stack_config(stack, raw)
    return _evaluate(config, raw, preview, lambda: runpy.run_path(str(PROGRAM)))


def evaluate_component(
    create: Callable[[], object], *, stack: str = "dev", preview: bool = False
) -> StackEvaluation:
    """Run ``create`` (which constructs one component with its args) alone under the mocks."""
    raw = read_stack_file(stack)
    return _evaluate(parse_stack_config(stack, raw), raw, preview, create)


def _evaluate(
    config: StackConfig, raw: Mapping[str, Any], preview: bool, program: Callable[[], object]
) -> StackEvaluation:
    warnings: list[str] = []
    monitor = RecordingMonitor(FabricatingMocks(config, preview))
    configure_runtime(config.stack, preview, monitor, warnings)
    set_all_config({key: engine_string(value) for key, value in raw.items()}, [])

    def run() -> None:
        program()

    started = time.perf_counter()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(run_in_stack(run))
    finally:
        loop.close()
        asyncio.set_event_loop(None)
        settings.ROOT.set(None)
    seconds = time.perf_counter() - started

    outputs, secret_outputs = monitor.stack_outputs()
    return StackEvaluation(
        stack=config.stack,
        preview=preview,
        config=config,
        resources=list(monitor.records),
        outputs=outputs,
        secret_outputs=secret_outputs,
        seconds=seconds,
        warnings=warnings,
    )
