"""Guards for values a provider must return."""

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def required(what: str) -> Callable[[T | None], T]:
    """An ``apply`` callback that fails loudly, naming ``what``, if the provider returned
    nothing (the SDK types most computed attributes as optional)."""

    def check(value: T | None) -> T:
        if value is None or value == "":
            raise ValueError(f"the provider returned no {what}")
        return value

    return check
