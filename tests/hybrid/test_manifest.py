"""manifest.json: the one hashing implementation every consumer relies on, and the
sub-manifest a site serves."""

import hashlib
import json
from pathlib import Path

import pytest

from hybrid.manifest import MANIFEST_NAME, FileEntry, Manifest, ManifestError, load_verified


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    files = {
        "alpha/config.pbtxt": b'name: "alpha"\n',
        "alpha/1/model.py": b"print('alpha')\n",
        "beta/config.pbtxt": b'name: "beta"\n',
        "beta/1/weights.bin": bytes(range(256)) * 10,
    }
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    Manifest.of_directory(tmp_path, target="local", stack="dev").write(tmp_path)
    return tmp_path


def test_manifest_lists_every_file_with_sha256_size_and_the_contract_hash(repo: Path) -> None:
    raw = json.loads((repo / MANIFEST_NAME).read_text())
    assert raw["target"] == "local" and raw["stack"] == "dev"
    assert raw["models"] == ["alpha", "beta"]
    assert MANIFEST_NAME not in raw["files"]
    for name, entry in raw["files"].items():
        data = (repo / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    lines = "".join(f"{name} {raw['files'][name]['sha256']}\n" for name in sorted(raw["files"]))
    assert raw["content_hash"] == hashlib.sha256(lines.encode()).hexdigest()
    manifest = load_verified(repo)
    assert manifest.prefix == f"repo/{raw['content_hash']}/"


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda root: (root / "beta/1/weights.bin").write_bytes(b"tampered"), "does not match"),
        (lambda root: (root / "alpha/1/model.py").unlink(), "missing"),
        (lambda root: (root / "alpha/1/extra.py").write_text("x = 1\n"), "not listed"),
    ],
    ids=["changed", "missing", "extra"],
)
def test_verify_names_the_stale_file_and_says_how_to_fix_it(repo: Path, damage, expected) -> None:
    damage(repo)
    with pytest.raises(ManifestError, match=expected) as caught:
        load_verified(repo)
    assert "make models" in str(caught.value)


def test_read_refuses_missing_malformed_or_inconsistent_manifests(tmp_path: Path, repo: Path):
    with pytest.raises(ManifestError, match=r"does not exist.*make models"):
        Manifest.read(tmp_path / "nowhere")
    raw = json.loads((repo / MANIFEST_NAME).read_text())
    raw["content_hash"] = "0" * 64
    (repo / MANIFEST_NAME).write_text(json.dumps(raw))
    with pytest.raises(ManifestError, match="does not match its file list"):
        Manifest.read(repo)
    (repo / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ManifestError, match="malformed"):
        Manifest.read(repo)


def test_for_models_keeps_only_those_models_and_recomputes_the_hash(repo: Path) -> None:
    full = Manifest.read(repo)
    beta = full.for_models(["beta"])
    assert beta.models == ("beta",)
    assert set(beta.files) == {"beta/config.pbtxt", "beta/1/weights.bin"}
    assert beta.content_hash != full.content_hash
    assert beta.content_hash == Manifest.build("local", "dev", ["beta"], beta.files).content_hash
    assert full.for_models(["alpha", "beta"]).content_hash == full.content_hash
    with pytest.raises(ManifestError, match="no model"):
        full.for_models(["gamma"])


def _ensembles(calls: dict[str, list[str]]) -> Manifest:
    """A manifest of config-only models whose ensembles call what ``calls`` says."""
    models = {*calls, *(step for steps in calls.values() for step in steps)}
    files = {
        f"{m}/config.pbtxt": FileEntry(hashlib.sha256(m.encode()).hexdigest(), 1) for m in models
    }
    return Manifest.build("local", "dev", models, files, calls)


def test_for_site_takes_what_the_recorded_ensemble_calls_need() -> None:
    manifest = _ensembles({"text_embedding": ["tokenizer", "encoder"], "ctr_ranker": []})
    public = manifest.for_site("public", ["text_embedding"])
    assert public.models == ("encoder", "text_embedding", "tokenizer")
    assert public.calls == {"text_embedding": ("tokenizer", "encoder")}
    private = manifest.for_site("private", ["text_embedding", "ctr_ranker"])
    assert private.models == ("ctr_ranker", "encoder", "text_embedding", "tokenizer")


def test_for_site_refuses_a_private_only_model_even_as_an_ensemble_step() -> None:
    manifest = _ensembles({"text_embedding": ["tokenizer", "ctr_ranker"]})
    with pytest.raises(ManifestError, match=r"private-only model\(s\) \['ctr_ranker'\].*public"):
        manifest.for_site("public", ["text_embedding"])
    assert "ctr_ranker" in manifest.for_site("private", ["text_embedding"]).models
