"""A TCP forwarder whose two sides may sit in different network namespaces.

`python -m serving.local.forwarder LISTEN_NS:ADDR:PORT=CONNECT_NS:ADDR:PORT ...` (an
empty namespace is the root one). The VPN mode uses it twice: as the private site's
gateway in the public namespace (listen there, connect to the private Triton through the
tunnel), and as each site's bridge to its emulated cloud storage (listen on 127.0.0.1 in
the site's namespace, connect to the emulator on the root namespace's 127.0.0.1, which
stands in for the clouds' private access to their storage APIs). Bytes pass untouched,
so mutual TLS stays end to end.
"""

import argparse
import asyncio
import contextlib
import ctypes
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

CLONE_NEWNET = 0x40000000
CHUNK = 256 * 1024
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class Side:
    namespace: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> "Side":
        namespace, host, port = text.rsplit(":", 2)
        return cls(namespace, host, int(port))


@contextlib.contextmanager
def netns(name: str) -> Iterator[None]:
    """Sockets made inside this block belong to namespace `name` ("" keeps the current one)."""
    if not name:
        yield
        return
    with open("/proc/self/ns/net") as home, open(f"/run/netns/{name}") as target:
        _setns(target.fileno())
        try:
            yield
        finally:
            _setns(home.fileno())


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"setns: {os.strerror(error)}")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


def _serve(target: Side) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with netns(target.namespace):
            upstream = socket.socket()
        upstream.setblocking(False)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await asyncio.get_running_loop().sock_connect(upstream, (target.host, target.port))
        except OSError:
            upstream.close()
            writer.close()
            return
        far_reader, far_writer = await asyncio.open_connection(sock=upstream)
        await asyncio.gather(_pipe(reader, far_writer), _pipe(far_reader, writer))

    return handle


async def _main(routes: list[tuple[Side, Side]]) -> None:
    servers = []
    for listen, target in routes:
        with netns(listen.namespace):
            sock = socket.create_server((listen.host, listen.port))
        sock.setblocking(False)
        servers.append(await asyncio.start_server(_serve(target), sock=sock))
    print(f"forwarding {len(routes)} route(s)", flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.local.forwarder")
    parser.add_argument("routes", nargs="+", help="LISTEN_NS:ADDR:PORT=CONNECT_NS:ADDR:PORT")
    args = parser.parse_args(argv)
    pairs = [text.split("=", 1) for text in args.routes]
    asyncio.run(_main([(Side.parse(listen), Side.parse(target)) for listen, target in pairs]))
    return 0


def route(listen: Side, target: Side) -> str:
    """One command-line route."""
    return "=".join(f"{side.namespace}:{side.host}:{side.port}" for side in (listen, target))


if __name__ == "__main__":
    sys.exit(main())
