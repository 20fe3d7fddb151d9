"""Every Redis key docqa writes, in one place.

A key's name says who owns it and what it holds; the broker's own keys (Celery, kombu) and the
Moonshot limiter's (namespaced by `MOONSHOT_NAMESPACE`) are the only others in the database.
Knowing them all here is what lets an operator reason about what Redis holds (see the README's
backups section) and what a flush loses.
"""

from __future__ import annotations

# The account-wide Moonshot limiter's prefix (concurrency leases, the per-minute window).
MOONSHOT_NAMESPACE = "docqa:moonshot"

# Chat
MODELS_CACHE = "docqa:chat:models"  # Moonshot's model list, cached for DOCQA_MODELS_CACHE_SECONDS
MODELS_REASONING = "docqa:chat:models:reasoning"  # the ids whose `supports_reasoning` is true
# Set while the configured MOONSHOT_MODEL is not in the account's list: the model used instead.
MODELS_DEFAULT_REPLACED = "docqa:chat:models:default-replaced"


def asks_window(user_id: int, minute: int) -> str:
    """Questions a user asked in one clock minute (the ask rate limit)."""
    return f"docqa:chat:asks:{user_id}:{minute}"


def answer_stream(answer_id: int) -> str:
    """One answer's deltas, a Redis Stream: one key per answer, never per conversation."""
    return f"docqa:answer:{answer_id}"


def answer_stop(answer_id: int) -> str:
    """Set when the user pressed Stop; the task checks it between deltas."""
    return f"docqa:answer:{answer_id}:stop"


def answer_stream_hub_wake(hub_id: str) -> str:
    """A web process's wake-up stream: a new SSE watcher wakes the one XREAD that reads them all."""
    return f"docqa:answer-hub:{hub_id}:wake"


def answer_request(answer_id: int) -> str:
    """The prepared chat request, handed from the ask to the task that sends it."""
    return f"docqa:answer:{answer_id}:request"


def answer_lock(answer_id: int) -> str:
    return f"docqa:lock:answer:{answer_id}"


# Documents
def uploads_window(user_id: int, minute: int) -> str:
    """Uploads a user attempted in one clock minute (DOCQA_USER_UPLOADS_PER_MINUTE)."""
    return f"docqa:documents:uploads:{user_id}:{minute}"


def user_events(user_id: int) -> str:
    """A user's live document events (a Redis Stream the documents page listens to)."""
    return f"docqa:events:user:{user_id}"


def user_streams(user_id: int) -> str:
    """A user's open live streams: a sorted set of slots scored by expiry (docqa.live_streams)."""
    return f"docqa:streams:user:{user_id}"


def ingest_lock(stored_file_id: int) -> str:
    return f"docqa:lock:ingest:{stored_file_id}"


# Housekeeping
REMOTE_SNAPSHOT = "docqa:housekeeping:snapshot"  # the last listing of the account
# Remote ids deleted lately, scored by when: a sync that listed the account before a delete may
# record its snapshot after it, and must not bring the deleted file back on the page.
REMOTE_DELETED = "docqa:housekeeping:deleted"
HOUSEKEEPING_JOB = "docqa:housekeeping:job"  # the admin's running job and its progress
RETENTION_NUDGED = "docqa:housekeeping:retention-nudged"
# Set (for a minute) when opening the account page started a sync: reloads do not start more.
ACCOUNT_REFRESH_NUDGED = "docqa:housekeeping:account-refresh-nudged"
RECONCILE_LOCK = "docqa:lock:reconcile"
RETENTION_LOCK = "docqa:lock:retention"
