"""The README's configuration reference keeps up with the keys the project accepts."""

from hybrid.config import declared_keys
from hybrid.config.parse import POOL_FIELDS
from hybrid.paths import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text()


def test_every_config_key_is_documented() -> None:
    missing = [key for key in declared_keys() if f"`{key}`" not in README]
    assert not missing, f"document these keys in README.md's Configuration reference: {missing}"


def test_every_gpu_pool_field_is_documented() -> None:
    assert not [f for f in POOL_FIELDS if f"`{f}`" not in README]
