"""What each local site serves comes from the local manifest: the stack's placement expanded
through the ensemble calls the manifest records, not through the model sources."""

import hashlib
from pathlib import Path

import pytest

from hybrid.config import load_stack_config
from hybrid.manifest import FileEntry, Manifest, ManifestError
from serving.local.repository import site_manifests

CALLS = {"text_embedding": ["tokenizer"], "tokenizer": [], "ctr_ranker": []}
"""Unlike the sources (whose ensemble also calls the encoder): what the manifest says wins."""


def _render(root: Path, calls: dict[str, list[str]]) -> None:
    files = {}
    for model in calls:
        path = root / model / "config.pbtxt"
        path.parent.mkdir(parents=True)
        path.write_text(f'name: "{model}"\n')
        files[f"{model}/config.pbtxt"] = FileEntry(
            hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size
        )
    Manifest.build("local", "dev", calls, files, calls).write(root)


def test_each_site_serves_its_placement_and_what_the_manifest_says_it_calls(
    tmp_path: Path,
) -> None:
    _render(tmp_path, CALLS)
    config = load_stack_config("dev")
    sites = site_manifests("dev", tmp_path)
    for site, manifest in sites.items():
        expected = set(config.models_on(site))
        if "text_embedding" in expected:
            expected.add("tokenizer")
        assert set(manifest.models) == expected, site
    assert "ctr_ranker" not in sites["public"].models


def test_a_manifest_that_calls_a_private_only_model_from_public_is_refused(
    tmp_path: Path,
) -> None:
    _render(tmp_path, {"text_embedding": ["ctr_ranker"], "ctr_ranker": []})
    with pytest.raises(ManifestError, match="private-only"):
        site_manifests("dev", tmp_path)
