"""`hobguard keygen FILE`: a new random device key for the network link."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "keygen",
        help="write a new random device key (for the network link)",
        description="Writes a new random 256-bit device key to FILE as 64 hex digits, in a file only "
        "its owner may read (mode 0600), created complete or not at all. The same key goes into the "
        "device's secrets file and the bridge's configuration. The key is never printed.",
        epilog="Example: hobguard keygen ~/.config/hobguard/kitchen.key",
    )
    parser.add_argument("file", metavar="FILE", help="where to write the key")
    parser.add_argument("--force", action="store_true", help="replace the key in FILE if it exists")
    parser.set_defaults(func=_keygen)


def _keygen(args: argparse.Namespace) -> int:
    from ..bridge.netlink import write_key_file

    try:
        path = write_key_file(args.file, force=args.force)
    except FileExistsError as err:
        print(f"hobguard keygen: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"hobguard keygen: {args.file}: {err.strerror or err}", file=sys.stderr)
        return 1
    print(f"new device key written to {path} (mode 0600)")
    return 0
