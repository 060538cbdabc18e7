"""The only reader of ``pulumi.Config``: hands the engine's values to the typed parser."""

import pulumi

from hybrid.config import ConfigError, StackConfig, declared_keys, parse_stack_config

PROVIDER_KEYS = ("aws:region", "gcp:project", "gcp:region")


def read_stack_config() -> StackConfig:
    """The validated config of the current stack; a bad config ends the run without a traceback."""
    raw = {}
    for key in (*declared_keys(), *PROVIDER_KEYS):
        namespace, name = key.split(":", 1)
        value = pulumi.Config(namespace).get(name)
        if value is not None:
            raw[key] = value
    try:
        return parse_stack_config(pulumi.get_stack(), raw)
    except ConfigError as error:
        raise pulumi.RunError(str(error)) from None
