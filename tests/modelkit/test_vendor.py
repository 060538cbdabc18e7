"""The cloud targets ship ``tokenizers`` (the GPU Triton image lacks it); the local one does not.

The shipped copy must be the venv's package byte for byte, load with nothing but the
standard library, be what the tokenizer's model.py imports, and come from a wheel the image
can run: anything else is refused with what to do.
"""

import importlib.metadata
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from hybrid.manifest import Manifest, file_sha256
from modelkit import render
from modelkit.build import build
from modelkit.errors import BuildError
from modelkit.tokenization import load_tokenizer, model_dir
from modelkit.tuning import LENGTH_BUCKETS
from modelkit.vendor import PACKAGE, VENDOR_DIR, check_isolated, vendored_files

SITES = ("public", "private")
VENDORED = f"tokenizer/1/{VENDOR_DIR}"


def test_cloud_targets_ship_the_venvs_tokenizers_and_local_does_not(repos) -> None:
    installed = vendored_files()
    assert f"{PACKAGE}/tokenizers.abi3.so" in installed
    assert not [name for name in installed if "__pycache__" in name]
    version = importlib.metadata.version(PACKAGE)
    assert f"{PACKAGE}-{version}.dist-info/METADATA" in installed
    for site in SITES:
        files = Manifest.read(repos[site]).files
        shipped = {n[len(VENDORED) + 1 :]: e for n, e in files.items() if n.startswith(VENDORED)}
        assert sorted(shipped) == sorted(installed)
        for name, entry in shipped.items():
            assert entry.sha256 == file_sha256(installed[name]), name
    assert not [n for n in Manifest.read(repos["local"]).files if VENDOR_DIR in n]


def test_the_shipped_package_needs_nothing_but_the_standard_library(repos) -> None:
    version = repos["public"] / "tokenizer" / "1"
    ids = check_isolated(version / VENDOR_DIR, version / "tokenizer.json")
    expected = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    assert ids == expected.encode("vendored tokenizers").ids
    assert not list((version / VENDOR_DIR).rglob("__pycache__"))  # the check wrote no bytecode


_RUN_MODEL = """
import json, sys, types
import numpy as np
from pathlib import Path
repo = Path(sys.argv[1])
utils = types.ModuleType("triton_python_backend_utils")
utils.Tensor = lambda name, array: (name, array)
utils.InferenceResponse = lambda output_tensors: dict(output_tensors)
utils.get_input_tensor_by_name = lambda request, name: types.SimpleNamespace(
    as_numpy=lambda: request[name])
utils.get_output_config_by_name = lambda config, name: next(
    o for o in config["output"] if o["name"] == name)
utils.triton_string_to_numpy = lambda name: {"TYPE_INT64": np.int64}[name]
sys.modules["triton_python_backend_utils"] = utils
sys.dont_write_bytecode = True
sys.path.insert(0, str(repo / "tokenizer" / "1"))
from model import TritonPythonModel
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2
config = text_format.Parse((repo / "tokenizer/config.pbtxt").read_text(),
                           model_config_pb2.ModelConfig())
model = TritonPythonModel()
model.initialize({"model_config": json.dumps(json_format.MessageToDict(
    config, preserving_proto_field_name=True)), "model_repository": str(repo / "tokenizer"),
    "model_version": "1"})
(out,) = model.execute([{"TEXT": np.array([[b"noise cancelling headphones"]], object)}])
print(json.dumps({"tokenizers": sys.modules["tokenizers"].__file__,
                  "ids": out["input_ids"].tolist()}))
"""


def test_the_cloud_tokenizer_model_imports_the_shipped_package(repos) -> None:
    """model.py puts ``vendor/`` first on sys.path, ahead of any installed tokenizers."""
    done = subprocess.run(
        [sys.executable, "-B", "-c", _RUN_MODEL, str(repos["public"])],
        capture_output=True,
        text=True,
        check=True,
    )
    answer = json.loads(done.stdout)
    assert answer["tokenizers"].startswith(str(repos["public"] / VENDORED))
    (ids,) = answer["ids"]
    assert len(ids) == LENGTH_BUCKETS[0]  # padded to the GPU target's first bucket
    assert [i for i in ids if i] == load_tokenizer().encode("noise cancelling headphones").ids


def _fake_distribution(root: Path, tags: list[str]) -> importlib.metadata.Distribution:
    """An installed-looking ``tokenizers`` whose wheel was built for ``tags``."""
    package = root / PACKAGE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    info = root / f"{PACKAGE}-9.9.9.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: 9.9.9\n")
    (info / "WHEEL").write_text("Wheel-Version: 1.0\n" + "".join(f"Tag: {t}\n" for t in tags))
    records = [f"{PACKAGE}/__init__.py,,", f"{info.name}/METADATA,,", f"{info.name}/WHEEL,,"]
    (info / "RECORD").write_text("\n".join(records) + "\n")
    return importlib.metadata.PathDistribution(info)


@pytest.mark.parametrize(
    "tags",
    [
        ["cp311-cp311-linux_x86_64"],  # built from source: not abi3, not manylinux
        ["cp310-abi3-macosx_11_0_arm64"],
        ["cp310-abi3-manylinux_2_17_aarch64.manylinux2014_aarch64"],
        ["cp310-abi3-musllinux_1_2_x86_64"],
        ["cp312-abi3-manylinux_2_17_x86_64"],  # too new for the 3.10 image
        [],
    ],
)
def test_a_build_the_image_cannot_run_is_refused_with_what_to_do(tmp_path, tags) -> None:
    with pytest.raises(BuildError) as error:
        vendored_files(_fake_distribution(tmp_path, tags))
    message = str(error.value)
    assert "9.9.9" in message and "x86_64 Linux" in message and "--target local" in message


@pytest.mark.parametrize(
    "tags",
    [
        ["cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64"],
        ["cp310-abi3-manylinux_2_28_x86_64"],
    ],
)
def test_an_abi3_manylinux_x86_64_wheel_is_shipped(tmp_path, tags) -> None:
    files = vendored_files(_fake_distribution(tmp_path, tags))
    assert sorted(files) == [f"{PACKAGE}-9.9.9.dist-info/METADATA", f"{PACKAGE}/__init__.py"]


def test_a_refused_package_fails_the_build_and_changes_nothing(built, tmp_path, monkeypatch):
    fake = _fake_distribution(tmp_path / "site", ["cp310-abi3-macosx_11_0_arm64"])
    monkeypatch.setattr(render, "vendored_files", lambda: vendored_files(fake))
    out = tmp_path / "repos"
    (local,) = build("dev", targets=["local"], out=out).targets  # never ships the package
    with pytest.raises(BuildError, match="x86_64 Linux"):
        build("dev", out=out)
    assert sorted(p.name for p in out.iterdir()) == ["local"]
    assert Manifest.read(out / "local") == local.manifest


def _vendor_package(root: Path, body: str) -> Path:
    vendor = root / VENDOR_DIR
    (vendor / PACKAGE).mkdir(parents=True)
    (vendor / PACKAGE / "__init__.py").write_text(textwrap.dedent(body))
    return vendor


def test_a_package_that_needs_a_third_party_module_is_refused(tmp_path) -> None:
    vendor = _vendor_package(tmp_path, "import numpy\nclass Tokenizer: pass\n")
    with pytest.raises(BuildError, match=r"does not load on its own: .*No module named 'numpy'"):
        check_isolated(vendor, tmp_path / "tokenizer.json")


def test_a_package_that_reaches_outside_its_folder_is_refused(tmp_path) -> None:
    site_packages = Path(importlib.metadata.distribution("PyYAML").locate_file(""))
    vendor = _vendor_package(
        tmp_path,
        f"""
        import sys
        sys.path.append({str(site_packages)!r})
        import yaml
        class Tokenizer:
            @staticmethod
            def from_file(path):
                return Tokenizer()
            def encode(self, text):
                return type("Encoding", (), {{"ids": [1, 2]}})()
        """,
    )
    with pytest.raises(BuildError, match=r"imported modules from outside it.*yaml"):
        check_isolated(vendor, tmp_path / "tokenizer.json")


def _loaded_tokenizers_library(parent: int) -> list[str]:
    """Where the python backend stubs under Triton ``parent`` mapped tokenizers' library from."""
    found: set[str] = set()
    for entry in Path("/proc").iterdir():
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            maps = (entry / "maps").read_text() if ppid == parent else ""
        except (OSError, ValueError, IndexError):
            continue
        found |= {line.split()[-1] for line in maps.splitlines() if "tokenizers.abi3.so" in line}
    return sorted(found)


@pytest.mark.local_stack
def test_a_real_triton_serves_the_cloud_tokenizer_from_its_vendor_folder(repos, tmp_path):
    """The public target's tokenizer (python backend, CPU) on the local Triton binary.

    Triton's python stub writes bytecode next to the model, so it serves a copy.
    """
    import numpy as np
    import tritonclient.grpc as grpcclient

    from modelkit.tokenization import load_tokenizer, tokenize
    from tests.modelkit.triton_support import serving

    repository = tmp_path / "repository"
    shutil.copytree(repos["public"] / "tokenizer", repository / "tokenizer")
    with serving(repository, ("tokenizer",), tmp_path) as served:
        text = grpcclient.InferInput("TEXT", [1, 1], "BYTES")
        text.set_data_from_numpy(np.array([[b"wireless noise cancelling headphones"]], object))
        ids = served.client.infer("tokenizer", [text]).as_numpy("input_ids")
        mapped = _loaded_tokenizers_library(served.process.pid)
    expected, _ = tokenize(load_tokenizer(), ["wireless noise cancelling headphones"])
    assert ids[0, : expected.shape[1]].tolist() == expected[0].tolist()
    assert mapped == [str(repository / VENDORED / PACKAGE / "tokenizers.abi3.so")]
