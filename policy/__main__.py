"""Entry point the Pulumi CLI runs (`pulumi preview --policy-pack policy`): serves the pack.

This is the only place a ``PolicyPack`` is built; its constructor never returns. The CLI
starts the pack with ``PULUMI_STACK`` set, so the stack-specific settings (private-only
models, GPU budget, plain-config digests) come from that stack's ``Pulumi.<stack>.yaml``.
"""

import os
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyPack

from policy import PACK_NAME, POLICIES
from policy.pack_config import load_pack_config

stack = os.environ.get("PULUMI_STACK")
settings: dict[str, EnforcementLevel | dict[str, Any]] = {}
if stack:
    settings.update(load_pack_config(stack))

PolicyPack(
    PACK_NAME,
    list(POLICIES),
    enforcement_level=EnforcementLevel.MANDATORY,
    initial_config=settings or None,
    description="Security, placement and cost guard-rails for the hybrid-inference stacks.",
)
