"""The HTTP edge of the server: who is calling (`deps`), what bodies and numbers it accepts
(`middleware`, `params`), the deadlines slow clients get (`deadlines`), the OpenAPI description
of its refusals (`openapi`), and one router per resource (`routes/`). Routes translate HTTP to
service calls and back; the rules live in `services/` and `domain/`.

May import: the server's services, settings, problems and store models; never the CLI.
"""

__all__: list[str] = []
