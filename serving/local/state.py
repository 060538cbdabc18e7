"""`.local/state.json`: what `up` started, where each site answers, and how to reach it.

The file is written after every process start, so `down` can clean up even after an
interrupted `up`; it is replaced atomically so a reader never sees half a file.
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybrid.paths import PROJECT_ROOT
from serving.endpoints import Endpoint, endpoint_from_json
from serving.errors import LocalStackError
from serving.local.iam import Principal
from serving.local.processes import Process

DEFAULT_DIR = PROJECT_ROOT / ".local"
STATE_FILE = "state.json"
VERSION = 2


@dataclass(frozen=True)
class SiteState:
    """One Triton site: the client's endpoint plus what the local mode needs to restart it."""

    endpoint: Endpoint
    """Its `metrics` is the host:port of Triton's /metrics (plain HTTP, never public)."""
    repository: str
    """What Triton loads: the bucket URL under the immutable `repo/<content_hash>` prefix."""
    content_hash: str

    @property
    def metrics(self) -> str:
        return self.endpoint.metrics or ""

    def to_json(self) -> dict[str, Any]:
        tls = self.endpoint.tls
        return {
            "grpc": self.endpoint.grpc,
            "http": self.endpoint.http,
            "tls": tls.to_json() if tls else None,
            "metrics": self.metrics,
            "models": list(self.endpoint.models),
            "repository": self.repository,
            "content_hash": self.content_hash,
        }

    @classmethod
    def from_json(cls, site: str, raw: dict[str, Any]) -> "SiteState":
        return cls(
            endpoint=endpoint_from_json(site, raw),
            repository=raw["repository"],
            content_hash=raw["content_hash"],
        )


@dataclass
class LocalState:
    """Everything `up` started; mutable while `up` runs, then written whole."""

    stack: str
    processes: dict[str, Process] = field(default_factory=dict)
    sites: dict[str, SiteState] = field(default_factory=dict)
    emulators: dict[str, str] = field(default_factory=dict)
    """Endpoint and bucket of each emulated cloud (`s3`, `s3_bucket`, `gcs`, `gcs_bucket`)."""
    principals: dict[str, Principal] = field(default_factory=dict)
    """moto's IAM users that outlive `up`: the admin, and the public Triton for restarts."""
    vpn_slot: int | None = None
    """The VPN network mode's addressing slot (`serving.local.addressing`); None: loopback."""
    cores: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """site -> the cores its Triton is pinned to (`serving.local.cores`); empty: shared."""

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "stack": self.stack,
            "pids": {name: p.pid for name, p in self.processes.items()},
            "logs": {name: p.log for name, p in self.processes.items()},
            "started": {name: p.started for name, p in self.processes.items()},
            "emulators": self.emulators,
            "principals": {name: p.to_json() for name, p in self.principals.items()},
            "sites": {name: site.to_json() for name, site in self.sites.items()},
            "vpn_slot": self.vpn_slot,
            "cores": {site: list(cores) for site, cores in self.cores.items()},
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "LocalState":
        return cls(
            stack=raw["stack"],
            processes={
                name: Process(name, pid, started=raw["started"][name], log=raw["logs"][name])
                for name, pid in raw["pids"].items()
            },
            sites={name: SiteState.from_json(name, s) for name, s in raw["sites"].items()},
            emulators=dict(raw["emulators"]),
            principals={name: Principal.from_json(p) for name, p in raw["principals"].items()},
            vpn_slot=raw.get("vpn_slot"),
            cores={site: tuple(cores) for site, cores in raw.get("cores", {}).items()},
        )


def state_path(folder: Path = DEFAULT_DIR) -> Path:
    return folder / STATE_FILE


def read_state(folder: Path = DEFAULT_DIR) -> LocalState | None:
    """The recorded state, or None when nothing was started here."""
    path = state_path(folder)
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
        if raw.get("version") != VERSION:
            raise ValueError(f"version {raw.get('version')}, expected {VERSION}")
        return LocalState.from_json(raw)
    except (ValueError, KeyError, TypeError) as error:
        raise LocalStackError(
            f"{path} is unreadable ({error}); stop what it started by hand or delete it."
        ) from error


def write_state(state: LocalState, folder: Path = DEFAULT_DIR) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = state_path(folder)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(state.to_json(), indent=2) + "\n")
    os.replace(partial, path)


def remove_state(folder: Path = DEFAULT_DIR) -> None:
    state_path(folder).unlink(missing_ok=True)
