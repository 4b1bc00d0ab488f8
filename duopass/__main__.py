"""`python -m duopass` is the `duopass` command."""

from duopass.cli.main import main

main()
