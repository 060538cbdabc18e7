"""Where sources, caches and rendered repositories live (all outputs under ignored build/)."""

from pathlib import Path

from hybrid.sites import SITES

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODEL_REPO = PROJECT_ROOT / "model_repo"
BUILD_DIR = PROJECT_ROOT / "build"
REPOS_DIR = BUILD_DIR / "repos"
CACHE_DIR = BUILD_DIR / "cache"
PLANS_DIR = BUILD_DIR / "plans"
"""Where TensorRT plans fetched from a site's bucket are dropped to be rendered in."""

LOCAL = "local"
TARGETS = (LOCAL, *SITES)
"""``local`` (CPU, python backend) plus one GPU target per site."""
