"""An ingest process (``server.ingest_processes``): ``python -m router.ingest_process``.

Started by the main process (router/ingest_pool.py), never by hand: it loads the same config,
takes events on the shared port (``SO_REUSEPORT``), commits them to the outbox and tells the
main process over its channel, which delivers them. It stops on SIGTERM, or by itself once the
main process is gone (its channel reaches end of file), after answering the requests it holds.
"""

from __future__ import annotations

import argparse
import socket
import sys

import attrs

from router.cli import load_for_serving, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m router.ingest_process", description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--port", type=int, required=True, help="the port to share")
    parser.add_argument("--channel-fd", type=int, required=True, help="its end of the channel")
    parser.add_argument("--number", type=int, required=True, help="1..server.ingest_processes")
    parser.add_argument("--json", action="store_true", help="JSON logs whatever the config says")
    args = parser.parse_args(argv)

    from router.app import Tagless

    config, plugins, refused = load_for_serving(args, process=f"ingest-{args.number}")
    config = attrs.evolve(config, server=attrs.evolve(config.server, port=args.port))
    channel = socket.socket(fileno=args.channel_fd)
    return serve(Tagless(config, plugins, refused=refused, channel=channel))


if __name__ == "__main__":
    sys.exit(main())
