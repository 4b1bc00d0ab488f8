"""`python -m duopass` is the `duopass` command."""

from duopass.cli.app import main

main()
