"""`ChatRefused`: what a user must change before docqa can do what they asked."""

from __future__ import annotations

from docqa.notes import note_display


class ChatRefused(Exception):
    """A request the user must change: the message says how, in their language.

    The message is plain (already translated) text or a stored note (`docqa.notes`): `str()`
    shows it in the active language, and an answer's `error` stores `.message` as it is.
    """

    @property
    def message(self) -> str:
        return self.args[0] if self.args else ""

    def __str__(self) -> str:
        return note_display(self.message)
