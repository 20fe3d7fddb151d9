"""Checking an answer's citations against its documents' stored texts, once, when it ends.

The task starts loading the texts (one query) on a small thread pool as soon as it streams,
and normalises them there (`citations_match.prepared`, the costly part, 7–15 ms per 200 KB
document the first time) while the model is still writing; when the answer ends, the quotes
are checked in a few milliseconds and the result is stored with the answer's final state
(`Message.citations`), so no page ever loads the texts to show an answer.

The texts are the documents' extracted text (`StoredFile.content_text`, what the document
page shows), so a verified quote's span is one that page can mark.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from django.db import close_old_connections, connection

from docqa.chat.citations import citations_check
from docqa.chat.citations_match import PREPARED_CACHE_SIZE, prepared
from docqa.chat.models import Message
from docqa.documents.models import Document

logger = logging.getLogger("docqa.chat.verification")

# How long an ending answer waits for its documents' texts before it is stored unchecked.
TEXTS_WAIT_SECONDS = 30
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="docqa-citations")


def document_texts(document_ids: Sequence[int]) -> list[str]:
    """The documents' stored texts in the order given ("" for a document deleted since)."""
    texts = dict(
        Document.objects.filter(pk__in=list(document_ids)).values_list("pk", "stored_file__content_text")
    )
    return [texts.get(pk, "") for pk in document_ids]


def _texts_load(document_ids: list[int]) -> list[str]:
    # SQLite: each of the pool's two threads keeps its connection (opening one, with its
    # PRAGMAs, was 3% of the answers worker at 500 at once). PostgreSQL: the connection goes
    # back to Django's pool between answers (cheap there, and a thread then holds none).
    keep = connection.vendor == "sqlite"
    if not keep:
        close_old_connections()
    try:
        texts = document_texts(document_ids)
    except Exception:
        connection.close()  # the next load reconnects
        raise
    finally:
        if not keep:
            connection.close()
    # Normalise now, while the model writes; past the cache's size the first would be evicted.
    for text in texts[:PREPARED_CACHE_SIZE]:
        if text:
            prepared(text)
    return texts


def texts_prefetch(document_ids: Sequence[int]) -> Future:
    """Start loading (and normalising) the documents' texts; the future gives them."""
    return _pool.submit(_texts_load, list(document_ids))


def answer_citations(content: str, document_ids: Sequence[int], texts: Future | Sequence[str]) -> list | None:
    """The stored form of an answer's citations (None when they could not be checked)."""
    if not document_ids:
        return None
    try:
        if isinstance(texts, Future):
            texts = texts.result(timeout=TEXTS_WAIT_SECONDS)
        return [citation.to_dict() for citation in citations_check(content, texts, list(document_ids))]
    except Exception:  # noqa: BLE001 - the answer is stored anyway, its citations shown unchecked
        logger.warning("could not check the citations of an answer", exc_info=True)
        return None


def answer_citations_store(answer_id: int) -> None:
    """Check and store the citations of an answer that ended without (the sweep's answers).

    The documents are the conversation's as they are now, in order (the sweep does not know
    which were sent; they are the same unless one was deleted meanwhile).
    """
    answer = Message.objects.filter(pk=answer_id).only("content", "conversation_id").first()
    if answer is None or not answer.content:
        return
    document_ids = list(
        Document.objects.filter(conversationdocument__conversation_id=answer.conversation_id)
        .order_by("conversationdocument__position")
        .values_list("pk", flat=True)
    )
    citations = answer_citations(answer.content, document_ids, document_texts(document_ids))
    if citations is not None:
        Message.objects.filter(pk=answer_id, citations__isnull=True).update(citations=citations)
