"""One error hierarchy for the serving library; the CLIs turn it into a message and exit code."""

from hybrid.cli import ExitCode


class ServingError(Exception):
    """Base of every error the serving library raises on purpose."""

    exit_code = ExitCode.FAILED


class LocalStackError(ServingError):
    """The local stack could not start, or its state is unusable."""


class AccessDeniedError(LocalStackError):
    """An emulated cloud refused a principal a request: its IAM documents do not allow it."""


class UploadVerificationError(ServingError):
    """An object in a bucket does not match the manifest: it is never served."""


class RequestError(ServingError):
    """The server refused the request itself (bad input): retrying cannot help."""

    exit_code = ExitCode.USAGE


class SiteUnavailableError(ServingError):
    """No site that the model is placed on answered before the deadline.

    For a private-only model this is the fail-closed answer: the request is never sent
    to the public site, whatever happens to the private one.
    """

    exit_code = ExitCode.UNAVAILABLE

    def __init__(
        self,
        model: str,
        sites: tuple[str, ...],
        causes: dict[str, str],
        sensitive: bool = False,
        refused: bool = False,
    ) -> None:
        """`refused`: every site refused the connection, so the call gave up before its
        deadline (`RetryPolicy.refused_attempts`)."""
        self.model = model
        self.sites = sites
        self.causes = causes
        self.sensitive = sensitive
        detail = "; ".join(f"{site}: {cause}" for site, cause in causes.items()) or "no attempt"
        placed = " and ".join(sites)
        if sensitive:
            where = f"this sensitive request was held to {placed} (never sent elsewhere)"
        else:
            only = " (placed only there; never sent elsewhere)" if len(sites) == 1 else ""
            where = f"it is placed on {placed}{only}"
        outcome = (
            "every site refused the connection, so it failed at once"
            if refused
            else "no site answered before the deadline"
        )
        super().__init__(
            f"model '{model}' is unavailable: {where} and {outcome} ({detail}). "
            "Check `make status-local` or the site's endpoint."
        )


class TargetError(ServingError):
    """The sites to check cannot be reached as described: a stack output is missing or
    unusable, a file is unreadable, or kubectl could not forward a port.

    A user's mistake, so it is reported in words, never as a traceback.
    """

    exit_code = ExitCode.USAGE
