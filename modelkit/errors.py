"""One error hierarchy for the model build; the CLI turns it into a message and an exit code."""

from hybrid.cli import ExitCode


class ModelkitError(Exception):
    """Something the user can fix; the message says what and how."""

    exit_code = ExitCode.USAGE


class SourceError(ModelkitError):
    """A model source (config.pbtxt, model.py) or a rendered config is wrong."""

    def __init__(self, model: str, field: str, message: str) -> None:
        self.model = model
        self.field = field
        super().__init__(f"model '{model}', field '{field}': {message}")


class PlacementError(ModelkitError):
    """A stack places a model where it must not run, or names a model that does not exist."""


class BuildError(ModelkitError):
    """An export or training step produced something unusable (e.g. AUC below target)."""

    exit_code = ExitCode.FAILED


class FetchError(ModelkitError):
    """A TensorRT plan in a site's bucket cannot be fetched whole, or fits another graph."""
