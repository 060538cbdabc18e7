"""Which rendered files each local site serves: the local manifest, cut down per site."""

from pathlib import Path

from hybrid.config import load_stack_config
from hybrid.manifest import Manifest, load_verified
from hybrid.paths import LOCAL, REPOS_DIR
from hybrid.sites import SITES

LOCAL_REPOSITORY = REPOS_DIR / LOCAL


def site_manifests(stack: str, repository: Path = LOCAL_REPOSITORY) -> dict[str, Manifest]:
    """The verified local manifest, cut down to the model folders placed on each site.

    The stack places client-facing models; the manifest's recorded ensemble calls add what
    they need (never the model sources, which may have changed since the rendering). Each
    site uploads and loads only its own models, under the prefix named by the sub-manifest's
    own content hash, exactly as the cloud path does.
    """
    manifest = load_verified(repository)
    config = load_stack_config(stack)
    return {site: manifest.for_site(site, config.models_on(site)) for site in SITES}
