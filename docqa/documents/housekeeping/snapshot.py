"""The last listing of the account (and its balance), kept in Redis for the admin page."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime

import redis
from django.utils import timezone

from docqa import keys
from docqa.connections import redis_client
from docqa.moonshot import FileObject

logger = logging.getLogger("docqa.documents.housekeeping")

DELETED_KEEP_SECONDS = 24 * 3600


def snapshot_record(*, remote: list[FileObject], balance: dict | None, taken_at: datetime) -> None:
    """Keep the last listing of the account (and its balance) for the admin page."""
    payload = {
        "taken_at": taken_at.isoformat(),
        "files": [
            {
                "id": f.id,
                "filename": f.filename,
                "bytes": f.bytes,
                "created_at": f.created_at,
                "status": f.status,
            }
            for f in remote
        ],
        "balance": balance,
    }
    redis_client().set(keys.REMOTE_SNAPSHOT, json.dumps(payload))


def snapshot_get() -> dict | None:
    """The last listing, less the files deleted since it was taken."""
    client = redis_client()
    raw = client.get(keys.REMOTE_SNAPSHOT)
    if not raw:
        return None
    data = json.loads(raw)
    taken = datetime.fromisoformat(data["taken_at"]).timestamp()
    deleted = set(client.zrangebyscore(keys.REMOTE_DELETED, taken, "+inf"))
    if deleted:
        data["files"] = [item for item in data["files"] if item["id"] not in deleted]
    return data


def snapshot_files(snapshot: dict) -> list[FileObject]:
    return [FileObject.from_api(item) for item in snapshot.get("files", [])]


def snapshot_forget(remote_ids: Iterable[str]) -> None:
    """Drop deleted files from the snapshot so the page does not show them until the next sync."""
    gone = set(remote_ids)
    if not gone:
        return
    client = redis_client()
    now = timezone.now().timestamp()
    pipe = client.pipeline(transaction=False)
    pipe.zadd(keys.REMOTE_DELETED, dict.fromkeys(gone, now))
    pipe.zremrangebyscore(keys.REMOTE_DELETED, "-inf", now - DELETED_KEEP_SECONDS)
    pipe.expire(keys.REMOTE_DELETED, DELETED_KEEP_SECONDS)
    pipe.execute()
    for _attempt in range(5):
        with client.pipeline() as pipe:
            try:
                pipe.watch(keys.REMOTE_SNAPSHOT)
                raw = pipe.get(keys.REMOTE_SNAPSHOT)
                if not raw:
                    return
                data = json.loads(raw)
                data["files"] = [item for item in data["files"] if item["id"] not in gone]
                pipe.multi()
                pipe.set(keys.REMOTE_SNAPSHOT, json.dumps(data))
                pipe.execute()
                return
            except redis.WatchError:
                continue  # written meanwhile: trim the newer list
    logger.warning("could not trim the account snapshot; the next sync refreshes it")
