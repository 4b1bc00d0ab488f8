"""The demonstrations (`duopass demo`, `duopass demo --doors`), and the harness that starts
servers.

    rush          the lunch rush played against a server
    doors         a concert's doors: entry gates, two cut off, a lost phone reissued at the door
    doors_report  the doors' figures and checks (entries, the old generation, alerts, ledger)
    server        a server of the demo's own
    seed          demo data for `duopass serve --demo` and the demo
    serving       a server in a thread or a process on 127.0.0.1, for demos, tests, benchmarks
    netcut        the TCP proxy that cuts the tills (and gates) off

Nothing the production server runs imports this package (docs/architecture.json: Server never
Demo).
"""

__all__: list[str] = []
