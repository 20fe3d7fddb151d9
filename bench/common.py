"""Shared pieces of the benchmarks: statistics, seeding documents and conversations, tables."""

from __future__ import annotations

import asyncio
import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from bench import app as A

MB = 1024 * 1024


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0–100), nearest-rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def ms(seconds: float) -> str:
    return "–" if seconds is None or math.isnan(seconds) else f"{seconds * 1000:.1f} ms"


def secs(seconds: float) -> str:
    return "–" if seconds is None or math.isnan(seconds) else f"{seconds:.2f} s"


def mib(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value / MB:.1f} MB"


def x(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.3f}×"


def verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("met" if ok else "**missed**")


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [
            f"### {self.title}",
            "",
            "| " + " | ".join(self.columns) + " |",
            "| " + " | ".join("---" for _ in self.columns) + " |",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.notes:
            lines.append("")
            lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"


# --- seeding ----------------------------------------------------------------------------------

DOC_SENTENCES = [
    "The tide is caused mainly by the gravitational pull of the moon on the oceans.",
    "Spring tides happen when the sun and the moon line up, neap tides when they are at right angles.",
    "Harbour engineers publish tide tables a year ahead for every port on the coast.",
    "The tidal range in the Bay of Fundy is among the largest in the world, over sixteen metres.",
    "Tidal power stations turn the rise and fall of the sea into electricity with low-head turbines.",
]


def text_document(path: Path, *, chars: int, salt: str = "") -> Path:
    """A plain-text document of about `chars` characters (unique bytes when `salt` differs)."""
    out = [f"Document {salt}\n\n"] if salt else []
    size = sum(len(s) for s in out)
    i = 0
    while size < chars:
        sentence = DOC_SENTENCES[i % len(DOC_SENTENCES)] + (" " if i % 7 else "\n\n")
        out.append(sentence)
        size += len(sentence)
        i += 1
    path.write_text("".join(out))
    return path


def documents_ready(document_ids: list[int]) -> tuple[int, int, int]:
    """(ready, failed, still transient) among these documents."""
    from docqa.documents.models import Document, Status

    statuses = list(
        Document.objects.filter(pk__in=document_ids).values_list("stored_file__status", flat=True)
    )
    ready = statuses.count(Status.READY)
    failed = statuses.count(Status.FAILED)
    return ready, failed, len(document_ids) - ready - failed


async def upload_and_wait(
    app: A.Docqa, user: A.BenchUser, paths: list[Path], *, parallel: int = 4, timeout: float = 300
) -> list[int]:
    """Upload through the form, `parallel` at a time as the page's script does; wait until all are Ready."""
    from docqa.documents.models import Document

    semaphore = asyncio.Semaphore(parallel)

    async def one(path: Path) -> None:
        async with semaphore:
            response = await app.upload(user, path)
            if response.status != 200:
                raise RuntimeError(f"upload of {path.name}: {response.status} {response.text[:300]}")

    await asyncio.gather(*(one(p) for p in paths))
    names = [p.name for p in paths]
    ids = list(Document.objects.filter(owner_id=user.pk, filename__in=names).values_list("pk", flat=True))
    A.wait_until(lambda: documents_ready(ids)[2] == 0, timeout=timeout)
    return ids


def conversations_create(user: A.BenchUser, document_ids: list[int], count: int) -> list[int]:
    """`count` conversations about these documents, made with the chat service (not measured)."""
    from django.contrib.auth import get_user_model

    from docqa.chat import services

    owner = get_user_model().objects.get(pk=user.pk)
    return [
        services.conversation_create(owner=owner, document_ids=document_ids, language="en").pk
        for _ in range(count)
    ]


def direct_payload(conversation_id: int, question: str) -> dict:
    """The chat request docqa sends for a first question in this conversation (same bytes of text)."""
    from django.conf import settings

    from docqa.chat import catalogue, context, prepare
    from docqa.chat.models import Conversation

    conversation = Conversation.objects.get(pk=conversation_id)
    ordered = list(conversation.ordered_documents())
    documents = [d.stored_file.content_raw for d in ordered]
    messages = context.messages_assemble(
        system_prompt=prepare.system_prompt_for(conversation.system_prompt, ordered),
        documents=documents,
        turns=[],
        question=question,
    )
    return {
        "model": conversation.model,
        "messages": messages,
        "max_completion_tokens": catalogue.max_completion_tokens_for(conversation.model),
        "prompt_cache_key": str(conversation.pk),
        "safety_identifier": context.safety_identifier(conversation.owner_id, secret=settings.SECRET_KEY),
    }


def machine() -> str:
    import platform

    import psutil

    return (
        f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"{psutil.virtual_memory().total / 1024**3:.0f} GB RAM, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )
