"""A delivery process (``server.delivery_processes``): ``python -m router.delivery_process``.

Started by the main process (router/delivery_pool.py), never by hand: it loads the same config
and runs the delivery lanes it was given (``--lanes``), woken by the commits the main process
passes on over its channel, to which it sends its counters. It stops on SIGTERM, or by itself
once the main process is gone (its channel reaches end of file), after its lanes finish or give
back their batches. A reload is the main process's: it starts delivery processes afresh.
"""

from __future__ import annotations

import argparse
import socket
import sys

from router.cli import load_for_serving, serve
from router.delivery_pool import parse_lanes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m router.delivery_process", description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--channel-fd", type=int, required=True, help="its end of the channel")
    parser.add_argument("--number", type=int, required=True, help="1..server.delivery_processes")
    parser.add_argument("--lanes", required=True, help='its lanes: [["store", "destination"]]')
    parser.add_argument("--json", action="store_true", help="JSON logs whatever the config says")
    args = parser.parse_args(argv)

    from router.app import Tagless

    config, plugins, refused = load_for_serving(args, process=f"delivery-{args.number}")
    channel = socket.socket(fileno=args.channel_fd)
    lanes = frozenset(parse_lanes(args.lanes))
    return serve(Tagless(config, plugins, refused=refused, channel=channel, lanes=lanes))


if __name__ == "__main__":
    sys.exit(main())
