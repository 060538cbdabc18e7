"""The pack as a whole: metadata, the one place that serves it, its stack settings, its docs."""

import ast
from collections import Counter
from pathlib import Path

import pytest
from pulumi_policy import EnforcementLevel

from hybrid.paths import PROJECT_ROOT
from policy import POLICIES
from policy.network import digest
from policy.pack_config import load_pack_config
from policy.rules import CLOUDS

pytestmark = pytest.mark.usefixtures("rendered_repositories")

POLICY_DIR = PROJECT_ROOT / "policy"


def test_every_policy_is_described_and_graded() -> None:
    names = [p.name for p in POLICIES]
    assert len(names) == len(set(names))
    for policy in POLICIES:
        assert policy.description.endswith(".")
        assert policy.severity is not None
        assert policy.rules, policy.name
        assert {rule.cloud for rule in policy.rules} <= set(CLOUDS)
        expected = (
            EnforcementLevel.ADVISORY
            if policy.name == "gpu-cost-budget"
            else EnforcementLevel.MANDATORY
        )
        assert policy.enforcement_level is expected, policy.name


def test_rules_cover_both_clouds_and_kubernetes() -> None:
    per_cloud = Counter(rule.cloud for policy in POLICIES for rule in policy.rules)
    assert per_cloud["aws"] >= 10 and per_cloud["gcp"] >= 10 and per_cloud["kubernetes"] >= 5


def _constructs_policy_pack(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    return any(
        isinstance(node, ast.Call) and getattr(node.func, "id", None) == "PolicyPack"
        for node in ast.walk(tree)
    )


def test_only_main_builds_the_policy_pack() -> None:
    """Its constructor serves forever: importing anything else must never build one."""
    builders = {p.name for p in POLICY_DIR.glob("*.py") if _constructs_policy_pack(p)}
    assert builders == {"__main__.py"}
    main_module = "policy." + "__main__"  # spelled apart so this file does not match itself
    for path in (PROJECT_ROOT / "tests").rglob("*.py"):
        assert main_module not in path.read_text(), path


def test_pack_settings_come_from_the_stack_file() -> None:
    settings = load_pack_config("prod")
    assert settings["private-models-stay-private"] == {"privateOnlyModels": ["ctr_ranker"]}
    assert settings["gpu-cost-budget"] == {"monthlyBudgetUsd": 30000}
    assert digest("us-east-1") in settings["vpn-psk-not-plain"]["plainConfigDigests"]


def test_overrides_change_the_settings() -> None:
    models = {"text_embedding": ["private"], "ctr_ranker": ["private"]}
    settings = load_pack_config("dev", {"hybrid:models": models})
    assert settings["private-models-stay-private"] == {
        "privateOnlyModels": ["text_embedding", "ctr_ranker"]
    }


def test_the_docs_list_every_policy() -> None:
    text = (PROJECT_ROOT / "docs" / "policy.md").read_text()
    missing = [p.name for p in POLICIES if f"`{p.name}`" not in text]
    assert not missing, f"docs/policy.md does not describe {missing}"


def test_the_readme_shows_the_review() -> None:
    text = (PROJECT_ROOT / "README.md").read_text()
    assert "## Policy" in text and "make policy-review" in text
    assert "### Policy review: `dev`" in text, "README needs a sample of the review output"


def test_the_docs_count_the_rules_per_cloud() -> None:
    per_cloud = Counter(rule.cloud for policy in POLICIES for rule in policy.rules)
    total = sum(per_cloud.values())
    line = (
        f"Rules per cloud: AWS {per_cloud['aws']}, GCP {per_cloud['gcp']}, "
        f"Kubernetes {per_cloud['kubernetes']}, cross-cloud {per_cloud['cross-cloud']} "
        f"({total} in all, in {len(POLICIES)} policies)."
    )
    assert line in (PROJECT_ROOT / "docs" / "policy.md").read_text()
    readme = " ".join((PROJECT_ROOT / "README.md").read_text().split())
    summary = (
        f"{len(POLICIES)} policies, {total} rules (AWS {per_cloud['aws']}, GCP "
        f"{per_cloud['gcp']}, Kubernetes {per_cloud['kubernetes']}, cross-cloud "
        f"{per_cloud['cross-cloud']})"
    )
    assert summary in readme
