"""`python -m bench.faults [--smoke]`: the fault-injection run against the full stack.

Two worker processes (files: prefork; answers: threads), web, beat, the bench's own embedded
Redis and PostgreSQL (database `docqa_bench`, created afresh). The script injects each fault
while documents ingest and answers stream, waits for the app to recover by itself, then
counts what became of every upload and every question:

- SIGKILL the files worker mid-ingest, and the answers worker mid-answer (then start them again);
- restart Redis mid-stream (the bench's own server only; it keeps its data on disk);
- restart web while SSE clients stream (they reconnect, half with Last-Event-ID as a browser's
  EventSource does, half without as htmx's extension does, and must resume exactly);
- 429 storms and 500s on uploads and chat, streams cut mid-way, extraction errors, slow uploads.

Targets: nothing stuck, nothing lost, no duplicate remote files. Interrupted answers are
retried through the Regenerate button's URL to show they are retryable. The exit status is
non-zero when something is stuck, lost or duplicated (with `--strict`, also when a process
died by itself; the bench's supervisor restarts it either way and the table counts it).

Recovery timings are shortened for the run (sweep every 5 s, stale after 10 s) so that it
takes minutes, not the production half hour; the mechanisms are the production ones.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime
import html
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import app as A
from bench import http
from bench.common import Table, machine, text_document
from bench.stack import Stack, StackOptions

HERE = Path(__file__).resolve().parent
PG = "postgres://postgres@127.0.0.1:5432/{name}"


def database_fresh(name: str) -> str:
    for sql in (f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'):
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-c", sql],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return PG.format(name=name)


@dataclass
class Follow:
    """What one SSE client saw of an answer, across reconnects."""

    answer_id: int
    text: str = ""
    reconnects: int = 0
    done: bool = False
    error: str = ""


async def follow_answer(
    app: A.Docqa, user: A.BenchUser, answer_id: int, *, use_last_event_id: bool, deadline: float
) -> Follow:
    """Read an answer's stream to the end like a browser: reconnect after a break and resume."""
    seen = Follow(answer_id)
    last_id: str | None = None
    while time.monotonic() < deadline:
        try:
            async for event in app.answer_stream(
                user, answer_id, last_event_id=last_id if use_last_event_id else None
            ):
                if event.id:
                    last_id = event.id
                if event.event == "content":
                    seen.text += html.unescape(event.data)
                elif event.event == "snapshot-content":
                    seen.text = html.unescape(event.data)
                elif event.event == "done":
                    seen.done = True
                    return seen
        except Exception as exc:  # noqa: BLE001 - a cut stream: reconnect as EventSource does
            seen.error = f"{type(exc).__name__}"
        seen.reconnects += 1
        await asyncio.sleep(1.0)
    return seen


@dataclass
class Run:
    stack: Stack
    app: A.Docqa
    control: object
    injected: collections.Counter = field(default_factory=collections.Counter)
    uploads_tried: int = 0
    uploads_accepted: int = 0
    document_ids: list[int] = field(default_factory=list)
    answers: list[tuple[A.BenchUser, int]] = field(default_factory=list)
    follows: list[Follow] = field(default_factory=list)
    asks_refused: int = 0
    notes: list[str] = field(default_factory=list)

    # -- uploads -----------------------------------------------------------------------------

    async def upload(self, user: A.BenchUser, paths: list[Path], *, write_delay: float = 0.0) -> None:
        from docqa.documents.models import Document

        async def one(path: Path) -> None:
            self.uploads_tried += 1
            try:
                response = await self.app.upload(user, path, write_delay=write_delay, chunk_size=64 * 1024)
            except Exception as exc:  # noqa: BLE001
                self.notes.append(f"upload {path.name}: {type(exc).__name__}")
                return
            if response.status == 200:
                self.uploads_accepted += 1

        await asyncio.gather(*(one(p) for p in paths))
        names = [p.name for p in paths]
        self.document_ids += list(
            Document.objects.filter(owner_id=user.pk, filename__in=names).values_list("pk", flat=True)
        )

    def docs(self, user: A.BenchUser, prefix: str, count: int, chars: int = 4000) -> list[Path]:
        folder = self.stack.var_dir / "fault-docs"
        folder.mkdir(exist_ok=True)
        return [
            text_document(folder / f"{prefix}-{i}.txt", chars=chars, salt=f"{prefix}-{i}-{user.pk}")
            for i in range(count)
        ]

    # -- answers -----------------------------------------------------------------------------

    async def ask_and_follow(
        self, user: A.BenchUser, conversation_ids: list[int], *, during=None, wait_for_text: bool = True
    ) -> None:
        """Ask in each conversation, follow every stream; run `during()` once they are streaming."""
        answer_ids = []
        for conversation_id in conversation_ids:
            try:
                answer_ids.append(await self.app.ask(user, conversation_id, "What causes the tide?"))
            except http.HTTPError:
                self.asks_refused += 1
        self.answers += [(user, a) for a in answer_ids]
        deadline = time.monotonic() + 150
        tasks = [
            asyncio.create_task(
                follow_answer(self.app, user, a, use_last_event_id=i % 2 == 0, deadline=deadline)
            )
            for i, a in enumerate(answer_ids)
        ]
        if during is not None:
            if wait_for_text:
                await _until(lambda: _answers_with_text(answer_ids) >= max(1, len(answer_ids) // 2), 30)
            await asyncio.get_running_loop().run_in_executor(None, during)
        self.follows += await asyncio.gather(*tasks)


async def _until(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.get_running_loop().run_in_executor(None, predicate):
            return
        await asyncio.sleep(0.1)


def _answers_with_text(answer_ids: list[int]) -> int:
    from docqa.chat.models import Message

    return Message.objects.filter(pk__in=answer_ids).exclude(content="").count()


def _docs_in(states: tuple[str, ...], ids: list[int]) -> int:
    from docqa.documents.models import Document

    return Document.objects.filter(pk__in=ids, stored_file__status__in=states).count()


def scenario(run: Run, *, scale: int) -> None:
    """Every fault in turn; `scale` multiplies how many documents and answers each one meets."""
    stack, control = run.stack, run.control
    user = A.user_create("faults")
    conv_user = A.user_create("asker")
    base_doc = asyncio.run(_seed_document(run, conv_user))

    def conversations(n: int) -> list[int]:
        from bench.common import conversations_create

        return conversations_create(conv_user, [base_doc], n)

    # 1. SIGKILL the files worker mid-ingest.
    control.configure(extract_delay=2.0)
    paths = run.docs(user, "killed-ingest", 4 * scale)

    async def ingest_then_kill():
        upload = asyncio.create_task(run.upload(user, paths))
        await _until(lambda: _docs_in(("uploading", "extracting"), run.document_ids) > 0 or upload.done(), 30)
        await asyncio.sleep(0.5)
        await asyncio.get_running_loop().run_in_executor(None, lambda: stack.restart("files", signal.SIGKILL))
        run.injected["files worker SIGKILL mid-ingest"] += 1
        await upload

    asyncio.run(ingest_then_kill())
    control.configure(extract_delay=0.2)

    # 2. SIGKILL the answers worker mid-answer.
    def kill_answers():
        stack.restart("answers", signal.SIGKILL)
        run.injected["answers worker SIGKILL mid-answer"] += 1

    asyncio.run(run.ask_and_follow(conv_user, conversations(3 * scale), during=kill_answers))

    # 3. Redis restarted mid-stream.
    def restart_redis():
        stack.restart("redis", signal.SIGTERM)
        run.injected["Redis restart mid-stream"] += 1

    asyncio.run(run.ask_and_follow(conv_user, conversations(3 * scale), during=restart_redis))

    # 4. Web restarted while browsers stream.
    def restart_web():
        stack.restart("web", signal.SIGTERM)
        run.injected["web restart while streaming"] += 1

    asyncio.run(run.ask_and_follow(conv_user, conversations(3 * scale), during=restart_web))

    # 5. 429 storms and 500s on uploads and on chat.
    control.add_fault("POST", "/v1/files", status=429, error_type="rate_limit_reached_error", count=3 * scale)
    control.add_fault("GET", "/v1/files/*", status=500, error_type="server_error", count=2 * scale)
    control.add_fault(
        "POST", "/v1/chat/completions", status=429, error_type="rate_limit_reached_error", count=2 * scale
    )
    control.add_fault("POST", "/v1/chat/completions", status=500, error_type="server_error", count=scale)
    asyncio.run(run.upload(user, run.docs(user, "storm", 3 * scale)))
    asyncio.run(run.ask_and_follow(conv_user, conversations(2 * scale)))
    storm = {
        ("POST", "/v1/files", 429): ("429 on uploads", 3 * scale),
        ("GET", "/v1/files/*", 500): ("500 on file status/content", 2 * scale),
        ("POST", "/v1/chat/completions", 429): ("429 on chat", 2 * scale),
        ("POST", "/v1/chat/completions", 500): ("500 on chat", scale),
    }
    left = {(f["method"], f["path"], f["status"]): f["count"] or 0 for f in control.faults()}
    control.clear_faults()
    for key, (name, count) in storm.items():
        # Only what fired counts: a fault still armed when cleared was never injected.
        run.injected[name] += count - left.get(key, 0)

    # 6. Streams cut mid-way.
    control.add_fault("POST", "/v1/chat/completions", kind="cut_stream", after_chunks=8, count=2 * scale)
    asyncio.run(run.ask_and_follow(conv_user, conversations(2 * scale)))
    run.injected["chat stream cut mid-way"] += 2 * scale
    control.clear_faults()

    # 7. Extraction errors.
    control.add_fault(
        "POST", "/v1/files", kind="extract_error", message="the file is damaged (injected)", count=2 * scale
    )
    asyncio.run(run.upload(user, run.docs(user, "extract-error", 2 * scale)))
    run.injected["extraction error"] += 2 * scale

    # 8. Slow uploads (64 KB every 50 ms) beside normal ones.
    async def slow_and_fast():
        await asyncio.gather(
            run.upload(user, run.docs(user, "slow", scale, chars=400_000), write_delay=0.05),
            run.upload(user, run.docs(user, "beside-slow", 2 * scale)),
        )

    asyncio.run(slow_and_fast())
    run.injected["slow upload (64 KB / 50 ms)"] += scale


async def _seed_document(run: Run, user: A.BenchUser) -> int:
    from bench.common import upload_and_wait

    path = text_document(run.stack.var_dir / "fault-seed.txt", chars=6000)
    return (await upload_and_wait(run.app, user, [path]))[0]


def settle_and_count(run: Run, *, wait: float) -> tuple[Table, bool]:
    """Let the app recover, retry interrupted answers, then count every outcome."""
    from docqa.chat.models import Message, State
    from docqa.documents.models import Document, Status, StoredFile

    transient = (Status.QUEUED, Status.UPLOADING, Status.EXTRACTING)
    A.wait_until(
        lambda: (
            _docs_in(transient, run.document_ids) == 0
            and not Message.objects.filter(state=State.STREAMING).exists()
        ),
        timeout=wait,
        interval=1,
    )

    answer_ids = [a for _u, a in run.answers]
    states = dict(Message.objects.filter(pk__in=answer_ids).values_list("pk", "state"))
    reasons = collections.Counter(
        f"{m.state}: {m.error_display or '(no message)'}"
        for m in Message.objects.filter(pk__in=answer_ids).exclude(state=State.COMPLETE)
    )
    if reasons:
        run.notes.append(
            "answers not complete before Retry, by what they showed: "
            + "; ".join(f"{n} × {r}" for r, n in reasons.most_common())
        )
    # Retry what was interrupted or failed, as a person would with the Retry button.
    retried = retried_ok = 0
    users = {a: u for u, a in run.answers}
    for answer_id, state in states.items():
        if state in (State.INTERRUPTED, State.FAILED):
            retried += 1
            response = asyncio.run(
                http.request(
                    "POST",
                    f"{run.stack.base_url}/chat/answers/{answer_id}/regenerate/",
                    headers=users[answer_id].headers(**A.FORM),
                    body=b"",
                )
            )
            if response.status in (200, 302):
                new_id = int(response.headers.get("location", "").rsplit("answer-", 1)[-1] or 0)
                if new_id and A.wait_until(
                    lambda: Message.objects.filter(pk=new_id, state=State.COMPLETE).exists(),
                    timeout=60,
                    interval=0.5,
                ):
                    retried_ok += 1

    documents = Document.objects.filter(pk__in=run.document_ids).select_related("stored_file")
    ready = sum(d.stored_file.status == Status.READY for d in documents)
    failed = [d for d in documents if d.stored_file.status == Status.FAILED]
    failed_with_reason = sum(bool(d.stored_file.last_error) for d in failed)
    stuck = sum(d.stored_file.status in transient for d in documents)
    accepted_without_row = run.uploads_accepted - len(set(run.document_ids))

    complete = sum(s == State.COMPLETE for s in states.values())
    retryable = sum(s in (State.INTERRUPTED, State.FAILED, State.STOPPED) for s in states.values())
    lost = len(answer_ids) - complete - retryable
    contents = dict(Message.objects.filter(pk__in=answer_ids).values_list("pk", "content"))
    resumed_exact = sum(
        1
        for f in run.follows
        if f.done and states.get(f.answer_id) == State.COMPLETE and f.text == contents.get(f.answer_id)
    )
    followed_complete = sum(1 for f in run.follows if states.get(f.answer_id) == State.COMPLETE)
    reconnects = sum(f.reconnects for f in run.follows)

    remote = run.control.stats()
    from docqa.moonshot import MoonshotClient

    listing = MoonshotClient(base_url=run.stack.emulator_url, api_key="emulator-key").files_list()
    names = collections.Counter(f.filename for f in listing)
    duplicates = sum(n - 1 for n in names.values() if n > 1)
    known = set(StoredFile.objects.exclude(remote_id="").values_list("remote_id", flat=True))
    orphans = sum(1 for f in listing if f.id not in known)

    crashes = ", ".join(f"{name} × {n}" for name, n in run.stack.crashes.items()) or "none"
    table = Table("Fault-injection run", ["", "count", "target"])
    for name, count in run.injected.items():
        table.rows.append([f"fault: {name}", str(count), ""])
    table.rows += [
        ["faults injected (total)", str(sum(run.injected.values())), ""],
        ["uploads tried / accepted", f"{run.uploads_tried} / {run.uploads_accepted}", "all accepted"],
        ["documents Ready", str(ready), ""],
        [
            "documents Failed, with a reason shown",
            f"{len(failed)} ({failed_with_reason} with a reason)",
            "only the injected extraction errors",
        ],
        ["documents stuck", str(stuck), "0"],
        ["accepted uploads with no document", str(max(0, accepted_without_row)), "0"],
        ["answers asked", str(len(answer_ids)), ""],
        ["answers complete", str(complete), ""],
        [
            "answers interrupted or failed, retryable",
            f"{retryable} (Retry completed {retried_ok} of {retried})",
            "all retries complete",
        ],
        ["answers lost (no answer, or still streaming)", str(lost), "0"],
        ["asks refused", str(run.asks_refused), "0"],
        [
            "SSE clients that resumed to the exact saved text",
            f"{resumed_exact} of {followed_complete} complete answers ({reconnects} reconnects)",
            "all",
        ],
        ["duplicate remote files", str(duplicates), "0"],
        ["remote files no row knows", str(orphans), "0"],
        ["processes that died by themselves (restarted by the bench's supervisor)", crashes, "none"],
    ]
    table.notes += run.notes
    table.notes.append(f"Emulator requests: {dict(sorted(remote['requests'].items()))}")
    ok = (
        stuck == 0
        and lost == 0
        and duplicates == 0
        and orphans == 0
        and accepted_without_row <= 0
        and run.uploads_accepted == run.uploads_tried
        and retried_ok == retried
        and resumed_exact == followed_complete
    )
    return table, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.faults",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help="one of each fault, fewer documents and answers")
    parser.add_argument("--database", default="docqa_bench", help="PostgreSQL database to (re)create")
    parser.add_argument("--sqlite", action="store_true", help="use SQLite instead of PostgreSQL")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="also fail when a process died by itself (CI runs the smoke version so)",
    )
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    output = args.output or HERE / ("faults-smoke.md" if args.smoke else "faults.md")
    database_url = "" if args.sqlite else database_fresh(args.database)
    options = StackOptions(
        answer_threads=40,
        file_workers=2,
        database_url=database_url,
        emulator_knobs={"first_token_delay": 0.3, "chunk_delay": 0.05, "chunk_size_words": 4},
        extra_env={
            "DOCQA_SWEEP_INTERVAL": "5",
            "DOCQA_STALE_AFTER": "10",
            "DOCQA_ANSWER_STALE_AFTER": "5",
            "MOONSHOT_MAX_RETRIES": "4",
        },
    )
    started = time.monotonic()
    started_at = datetime.datetime.now().astimezone()
    with Stack(options, keep=args.keep) as stack:
        print(f"fault run: var dir {stack.var_dir}", file=sys.stderr)
        from docqa.emulator.control import EmulatorControl

        stack.supervise()
        run = Run(stack, A.Docqa(stack.base_url), EmulatorControl(stack.emulator_url))
        scenario(run, scale=1 if args.smoke else 3)
        table, ok = settle_and_count(run, wait=120 if args.smoke else 240)
        if args.strict and stack.crashes:
            ok = False
    elapsed = time.monotonic() - started
    text = (
        f"## Fault-injection run{' (smoke)' if args.smoke else ''}\n\n"
        f"Run {started_at:%Y-%m-%d %H:%M %Z} on {machine()}, in {elapsed / 60:.1f} min; "
        f"{'SQLite' if args.sqlite else 'PostgreSQL'}, embedded Redis, the emulator; reproduce with "
        f"`python -m bench.faults`.\n\n"
        + table.markdown()
        + ("" if ok else "\n**Targets missed** (see the rows above).\n")
    )
    output.write_text(text)
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
