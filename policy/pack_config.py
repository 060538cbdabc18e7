"""What the pack needs to know about a stack, taken from that stack's config.

Two policies depend on the stack: placement needs the private-only models, the cost guard
the budget, and the VPN key policy the digests of the plain config values. The same
function feeds the pack under the CLI (``policy/__main__.py``, from ``PULUMI_STACK``) and
the offline review, so both judge a stack by the same ``Pulumi.<stack>.yaml``.
"""

from collections.abc import Mapping
from typing import Any

from hybrid.config import StackConfig, parse_stack_config, read_stack_file
from policy.cost import BUDGET_KEY, GPU_COST_BUDGET
from policy.network import DIGESTS_KEY, VPN_PSK_NOT_PLAIN, digest
from policy.placement import MODELS_KEY, PRIVATE_MODELS_STAY_PRIVATE

PolicyConfig = dict[str, dict[str, Any]]
"""Policy name -> its settings, the shape ``--policy-pack-config`` files have."""


def stack_raw_config(stack: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The stack file's values with ``overrides`` applied (``None`` removes a key)."""
    raw = read_stack_file(stack)
    for key, value in (overrides or {}).items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return raw


def pack_config(config: StackConfig, raw: Mapping[str, Any]) -> PolicyConfig:
    return {
        PRIVATE_MODELS_STAY_PRIVATE.name: {MODELS_KEY: list(config.private_only_models())},
        GPU_COST_BUDGET.name: {BUDGET_KEY: config.gpu_budget_usd_per_month},
        VPN_PSK_NOT_PLAIN.name: {DIGESTS_KEY: sorted(plain_digests(raw))},
    }


def load_pack_config(stack: str, overrides: Mapping[str, Any] | None = None) -> PolicyConfig:
    """Settings for ``stack``; raises ``ConfigError`` when its config is invalid."""
    raw = stack_raw_config(stack, overrides)
    return pack_config(parse_stack_config(stack, raw), raw)


def plain_digests(value: Any) -> set[str]:
    """Digests of every plain string in the config; ``{secure: ...}`` entries are secrets."""
    if isinstance(value, str):
        return {digest(value)}
    if isinstance(value, Mapping):
        if set(value) == {"secure"}:
            return set()
        return {d for item in value.values() for d in plain_digests(item)}
    if isinstance(value, list):
        return {d for item in value for d in plain_digests(item)}
    return set()
