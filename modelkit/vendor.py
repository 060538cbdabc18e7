"""Ship ``tokenizers`` inside the tokenizer model: the stock GPU Triton image does not have it.

``nvcr.io/nvidia/tritonserver:<tag>-py3`` gives the python backend numpy but no
``tokenizers``. Instead of a custom image, the cloud targets carry the package in the model's
version folder (``tokenizer/1/vendor/``) and model.py puts that folder first on sys.path.

The package is copied from this venv, so it must be a build the image can run: a wheel for
CPython's stable ABI (abi3) on glibc Linux x86_64 (manylinux), built for Python 3.10 or
older (the image has 3.10 or 3.12). That is what pip installs on an x86_64 Linux host; on
any other host the cloud targets are refused with what to do instead.
"""

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

from modelkit.errors import BuildError

VENDOR_DIR = "vendor"
"""The folder in a python model's version folder that model.py puts first on sys.path."""
PACKAGE = "tokenizers"
IMAGE_PYTHON = (3, 10)
"""The oldest CPython of the supported Triton images (24.x: 3.10; 25.x: 3.12)."""
_ISOLATION_TIMEOUT_S = 60


def vendored_files(
    distribution: importlib.metadata.Distribution | None = None,
) -> dict[str, Path]:
    """``tokenizers`` as installed, by path under ``vendor/``; refuses a build the image can't run.

    The files are the package's own (from its RECORD, without bytecode caches) plus its
    METADATA, which names the version and licence of what is shipped.
    """
    dist = distribution or importlib.metadata.distribution(PACKAGE)
    version = dist.version
    _check_runs_on_image(dist, version)
    files: dict[str, Path] = {}
    for entry in dist.files or ():
        parts = entry.parts
        if parts[0] == PACKAGE and "__pycache__" not in parts:
            files[entry.as_posix()] = Path(str(dist.locate_file(entry)))
    metadata = next((e for e in dist.files or () if e.name == "METADATA"), None)
    if PACKAGE + "/__init__.py" not in files or metadata is None:
        raise BuildError(
            f"the installed {PACKAGE} {version} lists no package files in its RECORD; "
            f"reinstall it (make setup) before rendering the cloud targets"
        )
    files[f"{PACKAGE}-{version}.dist-info/METADATA"] = Path(str(dist.locate_file(metadata)))
    missing = sorted(name for name, path in files.items() if not path.is_file())
    if missing:
        raise BuildError(
            f"the installed {PACKAGE} {version} is incomplete ({missing[0]} is missing); "
            f"reinstall it (make setup) before rendering the cloud targets"
        )
    return dict(sorted(files.items()))


def _check_runs_on_image(dist: importlib.metadata.Distribution, version: str) -> None:
    """The wheel tags must say abi3 + manylinux x86_64, for a CPython no newer than 3.10."""
    tags = [
        line.split(":", 1)[1].strip()
        for line in (dist.read_text("WHEEL") or "").splitlines()
        if line.startswith("Tag:")
    ]
    if not any(_fits_image(tag) for tag in tags):
        found = ", ".join(tags) or "no wheel tags (built from source?)"
        raise BuildError(
            f"the cloud targets ship the venv's {PACKAGE} {version} to the GPU Triton image "
            f"(CPython {IMAGE_PYTHON[0]}.{IMAGE_PYTHON[1]}+ on x86_64 Linux), but this host "
            f"installed a build for {found}. Render the public/private targets on an x86_64 "
            f"Linux host (as CI does), or install the manylinux x86_64 abi3 wheel into the "
            f"venv there; `python -m modelkit build --target local` does not need it"
        )


def _fits_image(tag: str) -> bool:
    """``cp310-abi3-manylinux2014_x86_64`` fits; ``cp311-cp311-…``, musl, arm64 or macOS do not."""
    interpreter, abi, platform = tag.split("-", 2)
    if abi != "abi3" or not interpreter.startswith("cp3") or not interpreter[3:].isdigit():
        return False
    platforms = platform.split(".")
    linux = any(p.startswith("manylinux") and p.endswith("_x86_64") for p in platforms)
    return linux and (3, int(interpreter[3:])) <= IMAGE_PYTHON


_PROBE = """
import json, sys, sysconfig
vendor, tokenizer_json = sys.argv[1], sys.argv[2]
sys.path.insert(0, vendor)
from tokenizers import Tokenizer
ids = Tokenizer.from_file(tokenizer_json).encode("vendored tokenizers").ids
paths = sysconfig.get_paths()
allowed = tuple(p.rstrip("/") + "/" for p in (vendor, paths["stdlib"], paths["platstdlib"]))
outside = sorted(
    f"{name} ({module.__file__})"
    for name, module in list(sys.modules.items())
    if getattr(module, "__file__", None) and not module.__file__.startswith(allowed)
)
print(json.dumps({"ids": ids, "tokenizers": sys.modules["tokenizers"].__file__,
                  "outside": outside}))
"""


def check_isolated(vendor: Path, tokenizer_json: Path) -> list[int]:
    """Load ``tokenizer_json`` with nothing but ``vendor`` and the stdlib importable.

    Runs ``python -I -S`` (no site-packages, no PYTHONPATH, no current directory), so a
    dependency the image would lack fails here instead of when Triton loads the model;
    ``-B`` keeps the rendered folder free of bytecode.
    Returns the token ids of a probe text.
    """
    command = [sys.executable, "-I", "-S", "-B", "-c", _PROBE, str(vendor), str(tokenizer_json)]
    try:
        run = subprocess.run(
            command, capture_output=True, text=True, timeout=_ISOLATION_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise BuildError(f"the vendored {PACKAGE} in {vendor} hung while loading") from error
    if run.returncode != 0:
        tail = run.stderr.strip().splitlines()[-1:] or ["no output"]
        raise BuildError(
            f"the vendored {PACKAGE} in {vendor} does not load on its own: {tail[0]}; "
            f"it must need nothing but the standard library"
        )
    result = json.loads(run.stdout)
    if not result["tokenizers"].startswith(str(vendor)) or result["outside"]:
        elsewhere = result["outside"] or [result["tokenizers"]]
        raise BuildError(
            f"the vendored {PACKAGE} in {vendor} imported modules from outside it and the "
            f"standard library, which the Triton image may not have: {elsewhere}"
        )
    return list(result["ids"])
