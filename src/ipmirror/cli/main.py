"""Entry point of the ``ipmirror`` console script: parse, dispatch, map errors to exit codes.

Exit codes: one table for every command, in ``errors.py`` (``EXIT_*``; README "Exit codes"). A
command returns its code; an ``IpmirrorError`` exits with the code it carries (``exit_code``).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from ipmirror import __version__
from ipmirror.cli import add, admin, config, mirror, mount, naming, read, serve, swarm
from ipmirror.cli.common import Ctx, bool_flags, normalize_bools, tune_malloc
from ipmirror.errors import EXIT_FAILURE, EXIT_INTERRUPTED, IpmirrorError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ipmirror", description="IPFS-native mirror and cache for package "
                                "registries. The repository is $IPMIRROR_PATH (default ~/.ipmirror).")
    p.add_argument("--repo-dir", help="repository path (overrides $IPMIRROR_PATH)")
    p.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    p.add_argument("--version", action="version", version=f"ipmirror {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add.register(sub)
    read.register(sub)
    admin.register(sub)
    naming.register(sub)
    mirror.register(sub)
    serve.register(sub)
    config.register(sub)
    swarm.register(sub)
    mount.register(sub)
    v = sub.add_parser("version", help="print the version")
    v.set_defaults(func=lambda ctx: (ctx.print(f"ipmirror {__version__}"), 0)[1])
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_in
    tune_malloc()
    try:
        parser = build_parser()
        args = parser.parse_args(normalize_bools(args_in, bool_flags(parser)))
        rc: int = args.func(Ctx(args))
        return rc
    except BrokenPipeError:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("ipmirror: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except IpmirrorError as e:
        if debug:
            traceback.print_exc()
        print(f"Error: {e}", file=sys.stderr)
        return e.exit_code
    except Exception as e:
        if debug:
            traceback.print_exc()
        else:
            print(f"Error: internal error: {type(e).__name__}: {e} (run with --debug for the traceback)",
                  file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
