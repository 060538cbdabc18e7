"""Which rendered files each local site serves: modelkit's manifest and placement, per site."""

from hybrid.config import load_stack_config
from hybrid.manifest import Manifest, load_verified
from hybrid.paths import LOCAL, REPOS_DIR
from hybrid.sites import SITES
from modelkit.placement import site_models

LOCAL_REPOSITORY = REPOS_DIR / LOCAL


def site_manifests(stack: str) -> dict[str, Manifest]:
    """The verified local manifest, cut down to the model folders placed on each site.

    Each site uploads and loads only its own models, under the prefix named by the
    sub-manifest's own content hash, exactly as the cloud path does.
    """
    manifest = load_verified(LOCAL_REPOSITORY)
    config = load_stack_config(stack)
    return {site: manifest.for_models(site_models(config, site)) for site in SITES}
