"""The stack configuration: its schema, the stack files, and the parser that validates them."""

from hybrid.config.parse import load_stack_config, parse_stack_config
from hybrid.config.schema import (
    AddonsConfig,
    ConfigError,
    GpuPoolConfig,
    PrivateSiteConfig,
    Problem,
    PublicSiteConfig,
    ServingConfig,
    StackConfig,
)
from hybrid.config.stack_file import (
    PulumiFileError,
    declared_keys,
    read_pulumi_file,
    read_stack_file,
)

__all__ = [
    "AddonsConfig",
    "ConfigError",
    "GpuPoolConfig",
    "PrivateSiteConfig",
    "Problem",
    "PublicSiteConfig",
    "PulumiFileError",
    "ServingConfig",
    "StackConfig",
    "declared_keys",
    "load_stack_config",
    "parse_stack_config",
    "read_pulumi_file",
    "read_stack_file",
]
