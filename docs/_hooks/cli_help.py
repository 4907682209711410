"""MkDocs hook: ``<!-- cadcam-help: COMMAND -->`` in a page becomes that command's ``--help``, printed by
the parser the installed ``cadcam`` uses (``<!-- cadcam-help: -->`` with no command: ``cadcam --help``).
The command-line reference is therefore the parser's own text, never a copy that can drift."""

from __future__ import annotations

import re

MARKER = re.compile(r"<!-- cadcam-help:\s*([\w-]*)\s*-->")


def _help(command: str) -> str:
    import os

    from cadcam_numeric.cli import build_parser

    os.environ.setdefault("COLUMNS", "100")  # argparse wraps to the terminal; the page has one width
    parser = build_parser()
    if not command:
        return parser.format_help()
    action = next(a for a in parser._actions if a.dest == "command")
    if command not in action.choices:
        raise ValueError(f"docs: cadcam-help marker names {command!r}, which is not a cadcam command")
    return action.choices[command].format_help()


def on_page_markdown(markdown: str, page, config, files) -> str:
    return MARKER.sub(lambda m: f"```text\n{_help(m.group(1)).rstrip()}\n```", markdown)
