"""The `duopass` entry point: `duopass verify` (the conformance command, run by the thousand)
starts without importing every other command (nor Typer, on a plain command line); anything else
runs the whole command tree."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    """Console entry point."""
    if sys.argv[1:2] == ["verify"]:
        from duopass.cli.verify_run import run_plain

        run_plain(sys.argv[2:])  # leaves the process when the command line is plain
        from duopass.cli.verify import verify_alone

        verify_alone()
        return
    from duopass.cli.app import main as every_command

    every_command()
