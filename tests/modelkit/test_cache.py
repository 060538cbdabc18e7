"""Cache keys: what an artifact's bytes and facts depend on is in its key."""

import dataclasses

from modelkit.artifacts import MINILM_INT8, RECIPES
from modelkit.cache import recipe_key


def test_machine_facts_are_part_of_the_key() -> None:
    """The INT8 graph's gate was measured with this CPU's kernels: a CPU with other integer
    instructions gets a key of its own, so it builds and gates its own graph."""
    recipe = dataclasses.replace(RECIPES["ctr_ranker"], machine=lambda: ["x86_64", "avx2"])
    other_cpu = dataclasses.replace(recipe, machine=lambda: ["x86_64", "avx2", "avx512_vnni"])
    no_facts = dataclasses.replace(recipe, machine=tuple)
    keys = {recipe_key(recipe), recipe_key(other_cpu), recipe_key(no_facts)}
    assert len(keys) == 3
    assert recipe_key(no_facts) == recipe_key(RECIPES["ctr_ranker"]), "no facts, key unchanged"
    assert RECIPES[MINILM_INT8].machine() != [], "the INT8 recipe names the CPU"
