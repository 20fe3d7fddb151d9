"""The admin's latest long operation (a sync, a delete of orphans) and its progress, in Redis.

One job is on show at a time: starting one replaces the last, and a task only updates the job
it was started for.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass

from django.utils import timezone

from docqa import keys
from docqa.connections import redis_client
from docqa.notes import note_display

Progress = Callable[[int, int], None]
KEEP_SECONDS = 24 * 3600


class JobKind(enum.StrEnum):
    SYNC = "sync"
    DELETE_ORPHANS = "delete_orphans"


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass
class Job:
    """The admin's latest long operation, as the account page polls it."""

    id: str
    kind: str
    state: str = JobState.QUEUED
    done: int = 0
    total: int = 0
    summary: str = ""  # a stored note
    started_at: str = ""
    finished_at: str = ""

    @property
    def is_active(self) -> bool:
        return self.state in (JobState.QUEUED, JobState.RUNNING)

    @property
    def is_failed(self) -> bool:
        return self.state == JobState.FAILED

    @property
    def is_sync(self) -> bool:
        return self.kind == JobKind.SYNC

    @property
    def summary_display(self) -> str:
        return note_display(self.summary)


def job_get() -> Job | None:
    data = redis_client().hgetall(keys.HOUSEKEEPING_JOB)
    if not data:
        return None
    return Job(
        **{
            **data,
            "kind": JobKind(data["kind"]),
            "state": JobState(data.get("state", JobState.QUEUED)),
            "done": int(data.get("done", 0)),
            "total": int(data.get("total", 0)),
        }
    )


def job_create(*, kind: JobKind) -> Job:
    """Start recording a new job (the admin's button was pressed); the task fills it in."""
    job = Job(id=uuid.uuid4().hex, kind=kind, started_at=timezone.now().isoformat())
    client = redis_client()
    with client.pipeline() as pipe:
        pipe.delete(keys.HOUSEKEEPING_JOB)
        pipe.hset(keys.HOUSEKEEPING_JOB, mapping={k: str(v) for k, v in asdict(job).items()})
        pipe.expire(keys.HOUSEKEEPING_JOB, KEEP_SECONDS)
        pipe.execute()
    return job


def _job_update(job_id: str | None, **fields) -> None:
    if not job_id:
        return
    client = redis_client()
    # Only the job still on show is updated; a newer one replaced it otherwise.
    if client.hget(keys.HOUSEKEEPING_JOB, "id") != job_id:
        return
    client.hset(keys.HOUSEKEEPING_JOB, mapping={k: str(v) for k, v in fields.items()})


def job_progress(job_id: str | None) -> Progress:
    """A progress callback that records `done` of `total` for the page."""

    def record(done: int, total: int) -> None:
        _job_update(job_id, state=JobState.RUNNING, done=done, total=total)

    return record


def job_finish(job_id: str | None, *, summary: str, failed: bool = False) -> None:
    _job_update(
        job_id,
        state=JobState.FAILED if failed else JobState.DONE,
        summary=summary,
        finished_at=timezone.now().isoformat(),
    )
