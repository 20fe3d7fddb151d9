"""Housekeeping of the Moonshot account: reconciliation, orphans, retention, the admin's view.

The account (1,000 files, 10 GB) is shared by every user of an install, and by anything else
that uses the same key. docqa names every remote file it creates `docqa-<upload token>.<ext>`
(see `StoredFile.remote_filename`); files with any other name are someone else's and are
never deleted here.

A remote file is
- *linked* when a stored file's `remote_id` is its id;
- *in flight* when its name carries the token of a stored file that is still being uploaded
  and has not recorded a remote id yet (the ingest will adopt it);
- an *orphan* otherwise, if its name is ours: reconciliation deletes it once it is older than
  `DOCQA_ORPHAN_GRACE`;
- *foreign* when its name is not ours.
A stored file is *missing* its remote copy when its `remote_id` is not in the account: its
text stays, `remote_id` is cleared and `remote_missing_at` set, so a re-extraction uploads
the local file again.

Every step re-checks the database right before it acts, so a run that races an upload, a
delete or another run does no harm; reconciliation and retention also take a Redis lease so
two runs at once do not do the same work twice.

Modules (each imports only those above it):
- `jobs`: the admin's long operation and its progress, in Redis;
- `snapshot`: the last listing of the account, kept for the admin page;
- `remote`: classifying the account's files against the stored files;
- `orphans`: deleting orphans (an admin's choice, or reconciliation's);
- `retention`: the retention policy, releasing remote copies, resuming uploads waiting for room;
- `reconcile`: listing the account, marking missing copies, deleting old orphans;
- `overview`: everything the admin's account page shows.
"""

LOCK_TTL = 60  # housekeeping leases are renewed while a run works: a killed run frees its job at once
