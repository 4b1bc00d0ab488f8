"""What every console form shares: the fields as typed (read with a limit each, shown again when
the page comes back with 422) and a code for each refused field, which the page's macros put
beside it in the page's language. The services check again."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from fastapi import Request

__all__ = ["TypedForm", "read_typed"]

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_CHOICE_CHARS_MAX: Final = 64


@dataclass
class TypedForm:
    """A form as typed: `typed` fields, `chosen` boxes, and `errors` by field name."""

    typed: dict[str, str]
    chosen: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def text(self, name: str, chars_max: int, *, required: bool = True) -> str:
        """The field stripped: `required` if empty (when it is), `too_long` past `chars_max`,
        `control` with a control character."""
        value = self.typed.get(name, "").strip()
        if not value and required:
            self.errors[name] = "required"
        elif len(value) > chars_max:
            self.errors[name] = "too_long"
        elif _CONTROL.search(value):
            self.errors[name] = "control"
        return value

    def picked(self, name: str, allowed: tuple[str, ...], code: str) -> list[str]:
        """The boxes ticked, each one of `allowed`; none ticked or another is `code`."""
        if not self.chosen or any(each not in allowed for each in self.chosen):
            self.errors[name] = code
            return []
        return list(self.chosen)


async def read_typed(
    request: Request, limits: Mapping[str, int], boxes: str, allowed: tuple[str, ...]
) -> tuple[dict[str, str], list[str]]:
    """The form's `limits` fields, each cut at its limit (one past the field's own, so that a
    longer one is refused as `too_long`), and the `boxes` ticked (at most one more than
    `allowed`, each cut short)."""
    form = await request.form()
    typed = {name: str(form.get(name) or "")[:limit] for name, limit in limits.items()}
    chosen = [str(each)[:_CHOICE_CHARS_MAX] for each in form.getlist(boxes)]
    return typed, chosen[: len(allowed) + 1]
