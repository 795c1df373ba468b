"""The queue-worker kit's operator commands: `python -m scripts VERB [options]`.

    python -m scripts status --env prod
    python -m scripts logs --env prod --follow --outcome retry
    python -m scripts dlq --env prod
    python -m scripts VERB --help

Exit codes: 0 done, 1 failure (one line on stderr), 2 bad arguments, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from scripts import (
    _cli,
    bench,
    bill,
    dlq,
    enqueue,
    local_run,
    logs,
    plan,
    purge,
    redrive,
    simulate,
    status,
)

COMMANDS: dict[str, _cli.Command] = {
    "status": status,
    "logs": logs,
    "enqueue": enqueue,
    "dlq": dlq,
    "redrive": redrive,
    "purge": purge,
    "plan": plan,
    "bill": bill,
    "simulate": simulate,
    "local-run": local_run,
    "bench": bench,
}


def parser() -> _cli.Parser:
    """`python -m scripts` with one subcommand per operator command."""
    top = _cli.Parser(
        prog="python -m scripts",
        description=_cli.description(sys.modules[__name__]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = top.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb, module in COMMANDS.items():
        sub = verbs.add_parser(
            verb,
            help=module.HELP,
            description=_cli.description(module),
            formatter_class=_cli.formatter(module),
        )
        module.add_arguments(sub)
        sub.set_defaults(execute=module.execute, parser=sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, then run the chosen command."""
    args, unknown = parser().parse_known_args(argv)
    if unknown:  # reported by the verb's parser, so the message names `python -m scripts VERB`
        args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return _cli.run(args.execute, args, args.parser)


if __name__ == "__main__":
    sys.exit(main())
