"""The lunch-rush demonstration (`duopass demo`), and the harness that starts servers.

    rush     the lunch rush played against a server
    server   a server of the demo's own
    seed     demo data for `duopass serve --demo` and the demo
    serving  a server in a thread or a process on 127.0.0.1, for the demo, tests and benchmarks
    netcut   the TCP proxy that cuts the tills off

Nothing the production server runs imports this package (docs/architecture.json: Server never
Demo).
"""

__all__: list[str] = []
