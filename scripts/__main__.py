"""The queue-worker kit's operator commands: `queue-worker VERB [options]`.

    queue-worker status --env prod
    queue-worker logs --env prod --follow --outcome retry
    queue-worker dlq --env prod --by-reason
    queue-worker retry --env prod ID
    queue-worker pause --env prod
    queue-worker --project ~/src/our-queue-kit plan --env prod
    queue-worker VERB --help

`python -m scripts VERB` is the same command. Every verb works from any directory: it reads
the cdk.json and cdk.out of --project DIR, else of $QUEUE_WORKER_PROJECT, else of the first
directory from the current one upward whose cdk.json has environments, else of the checkout
the command is installed from.

Exit codes: 0 done, 1 failure (one line on stderr), 2 bad arguments, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from scripts import _cli
from scripts.capacity import bill, plan, simulate
from scripts.devtools import bench, local_run, local_stack, measure_image
from scripts.operate import (
    dlq,
    enqueue,
    forget,
    logs,
    pause,
    purge,
    redrive,
    resume,
    retry,
    status,
)

COMMANDS: dict[str, _cli.Command] = {
    "status": status,
    "logs": logs,
    "enqueue": enqueue,
    "dlq": dlq,
    "redrive": redrive,
    "retry": retry,
    "forget": forget,
    "purge": purge,
    "pause": pause,
    "continue": resume,
    "plan": plan,
    "bill": bill,
    "simulate": simulate,
    "local-run": local_run,
    "local-stack": local_stack,
    "bench": bench,
    "measure": measure_image,
}


def program() -> str:
    """The name the command was run by: `queue-worker` (the installed command), else
    `python -m scripts`."""
    return "queue-worker" if Path(sys.argv[0]).name == "queue-worker" else "python -m scripts"


def parser() -> _cli.Parser:
    """The command with one subcommand per operator command; --project before or after it."""
    top = _cli.Parser(
        prog=program(),
        description=_cli.description(sys.modules[__name__]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _cli.add_project_option(top)
    verbs = top.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb, module in COMMANDS.items():
        sub = verbs.add_parser(
            verb,
            help=module.HELP,
            description=_cli.description(module),
            formatter_class=_cli.formatter(module),
        )
        module.add_arguments(sub)
        _cli.add_project_option(sub, default=argparse.SUPPRESS)  # keeps one given before VERB
        sub.set_defaults(execute=module.execute, parser=sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, then run the chosen command."""
    args, unknown = parser().parse_known_args(argv)
    if unknown:  # reported by the verb's parser, so the message names `queue-worker VERB`
        args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return _cli.run(args.execute, args, args.parser)


if __name__ == "__main__":
    sys.exit(main())
