"""Reading resource properties as the engine hands them to a policy.

The engine wraps properties in proxies that raise ``UnknownValueError`` when a value is
not known yet (a preview of a new resource). These helpers only read and never swallow
that error, so the engine reports "can't run during preview" instead of a false pass.
"""

import ipaddress
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy.proxy import UnknownValueError


def get(props: Any, *path: str | int, default: Any = None) -> Any:
    """The value at ``path`` (keys and list indexes), or ``default`` where any step is missing."""
    value = props
    for step in path:
        if isinstance(step, int):
            if not is_list(value) or step >= len(value):
                return default
        elif not isinstance(value, Mapping) or step not in value:
            return default
        value = value[step]
        if value is None:
            return default
    return value


def is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def items(value: Any) -> list[Any]:
    """A list property as a list; a missing one as ``[]``; a lone object as ``[object]``."""
    if value is None:
        return []
    if is_list(value):
        return list(value)
    return [value]


def is_anywhere(cidr: Any) -> bool:
    """True for a range that covers every address (``0.0.0.0/0``, ``::/0``)."""
    try:
        return ipaddress.ip_network(str(cidr), strict=False).prefixlen == 0
    except ValueError:
        return False


def as_number(value: Any, default: float = 0.0) -> float:
    """Numbers arrive as floats from the engine and sometimes as strings from config."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def json_document(value: Any) -> Any:
    """An IAM/bucket policy document: JSON text from the program, or an already-parsed object."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def known_strings(value: Any) -> list[str]:
    """Every known string in a property tree, mapping keys included (names hide there too).

    A value still unknown during preview is skipped: it names nothing yet, and the policy
    sees it when it runs again during the update.
    """
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        found: list[str] = []
        for key in value:
            found.append(str(key))
            found.extend(known_strings(_known(value, key)))
        return found
    if is_list(value):
        return [text for index in range(len(value)) for text in known_strings(_known(value, index))]
    return []


def _known(container: Any, key: Any) -> Any:
    try:
        return container[key]
    except UnknownValueError:
        return None


def resource_label(urn: str) -> str:
    """``type::name`` from a URN, short enough for a report line."""
    parts = urn.split("::")
    if len(parts) < 4:
        return urn
    return f"{parts[2].rsplit('$', 1)[-1]}::{parts[3]}"
