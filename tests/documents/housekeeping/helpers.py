"""What the emulator's account holds, asked over HTTP as docqa asks it."""

from __future__ import annotations

from docqa.connections import moonshot_client
from tests.factories import docqa_remote_name as docqa_name

__all__ = ["deletes", "docqa_name", "remote_ids"]


def remote_ids(emu) -> set[str]:
    return {item.id for item in moonshot_client().files_list()}


def deletes(emu) -> int:
    return emu.control.stats()["requests"].get("DELETE /v1/files/{id}", 0)
