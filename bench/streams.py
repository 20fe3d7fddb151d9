"""Benchmarks 1 and 2: relay overhead, and many answers streaming at once.

The baseline is the same chat completion (the same messages, model and parameters docqa
sends) read straight from the emulator by the same client code, run side by side with the
docqa runs: for the relay, alternating one by one; for concurrency, the N direct streams and
then the N docqa streams at each step.

Through docqa a stream starts at the ask POST (what a person waits from) and its text is
read from the answer's SSE stream; directly it starts at the chat completion POST.
Added per-delta latency of delta k = (its arrival − the first delta's arrival) through docqa
minus the same directly: what the relay adds to each delta after the first (the first
delta's own added time is the first-token figure).
"""

from __future__ import annotations

import asyncio
import collections
import math
from dataclasses import dataclass

from bench import app as A
from bench import http
from bench.common import Table, median, mib, ms, percentile, ratio, secs, verdict, x
from bench.stack import RssSampler, Stack

QUESTION = "What causes the tide, and when are spring tides?"
FIRST_TOKEN_DELAY = 0.3
CHUNK_DELAY = 0.02
CHUNK_WORDS = 6
# Issue 16's targets for 500 answers at once on two cores.
DURATION_TARGET = 2.0
CPU_TARGET = 1.5


def _since(at: float | None, started: float) -> float:
    return math.nan if at is None else at - started


@dataclass
class Pair:
    direct: A.Timeline
    docqa: A.Timeline

    def first_token(self) -> tuple[float, float]:
        return _since(self.direct.first, self.direct.started), _since(self.docqa.first, self.docqa.started)

    def duration(self) -> tuple[float, float]:
        return _since(self.direct.last, self.direct.started), _since(self.docqa.last, self.docqa.started)

    def added_per_delta(self) -> list[float]:
        added = []
        d0, q0 = self.direct.first, self.docqa.first
        for at, chars in self.direct.points:
            seen = self.docqa.time_at(chars)
            if seen is not None:
                added.append((seen - q0) - (at - d0))
        return added

    @property
    def ok(self) -> bool:
        return (
            self.docqa.done
            and not self.docqa.error
            and bool(self.docqa.points)
            and self.docqa.text == self.direct.text
        )


def pairs_check(pairs: list[Pair]) -> None:
    """Take each answer's final text from the database: complete means saved whole and right."""
    from docqa.chat.models import Message, State

    ids = [p.docqa.answer_id for p in pairs if p.docqa.answer_id]
    saved = dict(Message.objects.filter(pk__in=ids, state=State.COMPLETE).values_list("pk", "content"))
    for pair in pairs:
        content = saved.get(pair.docqa.answer_id)
        if content is None:
            if not pair.docqa.error:
                pair.docqa.error = "answer not complete in the database"
            pair.docqa.done = False
        elif content == pair.direct.text and pair.docqa.text != content and pair.docqa.done:
            pair.docqa.complete_with(content)


async def docqa_answer(app: A.Docqa, user: A.BenchUser, conversation_id: int) -> A.Timeline:
    started = http.now()
    try:
        answer_id = await app.ask(user, conversation_id, QUESTION)
    except Exception as exc:  # noqa: BLE001 - a refused or failed ask is a failed answer
        return A.Timeline(started, [], "", False, f"ask: {type(exc).__name__}: {exc}")
    return await A.docqa_timeline(app, user, answer_id, started)


def _stream_knobs(stack: Stack) -> None:
    from docqa.emulator.control import EmulatorControl

    control = EmulatorControl(stack.emulator_url)
    control.clear_faults()
    control.configure(
        first_token_delay=FIRST_TOKEN_DELAY, chunk_delay=CHUNK_DELAY, chunk_size_words=CHUNK_WORDS
    )


def relay(stack: Stack, user: A.BenchUser, document_ids: list[int], *, questions: int) -> Table:
    """Benchmark 1: `questions` answers one at a time, each beside the same stream read directly."""
    from bench.common import conversations_create, direct_payload

    _stream_knobs(stack)
    app = A.Docqa(stack.base_url)
    conversations = conversations_create(user, document_ids, questions + 1)
    payload = direct_payload(conversations[0], QUESTION)

    async def run() -> list[Pair]:
        # One unmeasured round each way first: connections, caches and imports warm up.
        await A.direct_timeline(stack.emulator_url, payload)
        await docqa_answer(app, user, conversations[-1])
        pairs = []
        for i in range(questions):
            if i % 2:
                docqa = await docqa_answer(app, user, conversations[i])
                direct = await A.direct_timeline(stack.emulator_url, payload)
            else:
                direct = await A.direct_timeline(stack.emulator_url, payload)
                docqa = await docqa_answer(app, user, conversations[i])
            pairs.append(Pair(direct, docqa))
        return pairs

    pairs = asyncio.run(run())
    _answers_settle()
    pairs_check(pairs)
    good = [p for p in pairs if p.ok and p.direct.points]
    ft_direct = median([p.first_token()[0] for p in good])
    ft_docqa = median([p.first_token()[1] for p in good])
    last_direct = median([p.duration()[0] for p in good])
    last_docqa = median([p.duration()[1] for p in good])
    added = [a for p in good for a in p.added_per_delta()]
    ft_ratio = ratio(ft_docqa, ft_direct)
    p99 = percentile(added, 99)
    table = Table(
        f"1. Relay overhead ({len(good)}/{len(pairs)} questions, upstream first token "
        f"{FIRST_TOKEN_DELAY * 1000:.0f} ms, a delta every {CHUNK_DELAY * 1000:.0f} ms)",
        ["figure", "docqa / direct", "through docqa", "direct from emulator", "target", ""],
    )
    table.rows.append(
        [
            "time to first token (median)",
            x(ft_ratio),
            ms(ft_docqa),
            ms(ft_direct),
            "≤ 1.05×",
            verdict(ft_ratio <= 1.05 if not math.isnan(ft_ratio) else None),
        ]
    )
    table.rows.append(
        [
            "time to last token (median)",
            x(ratio(last_docqa, last_direct)),
            secs(last_docqa),
            secs(last_direct),
            "",
            "",
        ]
    )
    table.rows.append(["added latency per delta, p50", "", ms(percentile(added, 50)), "", "", ""])
    table.rows.append(
        [
            "added latency per delta, p99",
            "",
            ms(p99),
            "",
            "≤ 10 ms",
            verdict(p99 <= 0.010 if not math.isnan(p99) else None),
        ]
    )
    table.notes.append(
        f"{len(added)} deltas compared; the docqa time to first token runs from the ask POST "
        "(save question, queue the task, worker, upstream request) to the first delta on the SSE stream."
    )
    bad = [p for p in pairs if not p.ok]
    if bad:
        table.notes.append(
            f"{len(bad)} answers incomplete or different: "
            + "; ".join(sorted({p.docqa.error or "text differs" for p in bad}))[:300]
        )
    return table


@dataclass
class Step:
    n: int
    pairs: list[Pair]
    peak: dict
    idle: dict
    wall_direct: float
    wall_docqa: float
    cpu: dict


CPU_PROCESSES = ("web", "answers", "emulator", "redis")


def _cpu(stack: Stack) -> dict:
    import time as _time

    out = {name: stack.cpu_seconds(name) for name in CPU_PROCESSES}
    # Every answers worker counts as "answers" (`--answer-workers`).
    out["answers"] += sum(stack.cpu_seconds(name) for name in stack.procs if name.startswith("answers-"))
    out["bench client"] = _time.process_time()
    return out


def concurrent(
    stack: Stack, user_docs: list[tuple[A.BenchUser, int]], *, steps: list[int], timeout: float
) -> Table:
    """Benchmark 2: N answers streaming at once from N clients, for each N in `steps`."""
    from bench.common import conversations_create, direct_payload

    _stream_knobs(stack)
    app = A.Docqa(stack.base_url)
    results: list[Step] = []
    for n in steps:
        # Spread the conversations over the users (a conversation holds one answer at a time).
        plan = []
        per_user = math.ceil(n / len(user_docs))
        for user, doc in user_docs:
            for conversation in conversations_create(user, [doc], min(per_user, n - len(plan))):
                plan.append((user, conversation))
        payloads = [direct_payload(conversation, QUESTION) for _user, conversation in plan]
        idle = {name: stack.rss(name) for name in ("web", "answers")}

        async def direct_all() -> list[A.Timeline]:
            return await asyncio.gather(
                *(asyncio.wait_for(A.direct_timeline(stack.emulator_url, p), timeout) for p in payloads),
                return_exceptions=False,
            )

        async def docqa_all() -> list[A.Timeline]:
            async def one(user, conversation):
                try:
                    return await asyncio.wait_for(docqa_answer(app, user, conversation), timeout)
                except TimeoutError:
                    return A.Timeline(http.now(), [], "", False, "timed out")

            return await asyncio.gather(*(one(u, c) for u, c in plan))

        start = http.now()
        directs = asyncio.run(direct_all())
        wall_direct = http.now() - start
        with RssSampler(stack, ("web", "answers")) as sampler:
            cpu_before = _cpu(stack)
            start = http.now()
            docqas = asyncio.run(docqa_all())
            wall_docqa = http.now() - start
            cpu = {k: v - cpu_before[k] for k, v in _cpu(stack).items()}
        _answers_settle()
        step_pairs = [Pair(d, q) for d, q in zip(directs, docqas, strict=True)]
        pairs_check(step_pairs)
        results.append(Step(n, step_pairs, dict(sampler.peak), idle, wall_direct, wall_docqa, cpu))

    web, workers = stack.options.web_workers, stack.options.answer_workers
    table = Table(
        "2. Concurrent answers (each client asks, then reads its SSE stream; "
        + (
            "threads-pool worker, one uvicorn)"
            if (web, workers) == (1, 1)
            else f"uvicorn --workers {web}, {workers} threads-pool answers workers)"
        ),
        [
            "at once",
            "completed",
            "duration docqa / direct (p50)",
            "CPU web + answers / emulator",
            "p99 ratio",
            "docqa p50 / p99",
            "direct p50",
            "first token p50 docqa / direct",
            "added per delta p50 / p99",
            "peak RSS web / worker (over idle)",
            "target",
        ],
    )
    for step in results:
        good = [p for p in step.pairs if p.ok]
        dur_direct = [p.duration()[0] for p in step.pairs if p.direct.points]
        dur_docqa = [p.duration()[1] for p in good]
        ft_direct = [p.first_token()[0] for p in step.pairs if p.direct.points]
        ft_docqa = [p.first_token()[1] for p in good]
        added = [a for p in good for a in p.added_per_delta()]
        r50 = ratio(median(dur_docqa), median(dur_direct))
        r99 = ratio(percentile(dur_docqa, 99), percentile(dur_direct, 99))
        cpu_ratio = ratio(step.cpu["web"] + step.cpu["answers"], step.cpu["emulator"])
        target = ""
        if step.n == 500:
            target = verdict(len(good) == step.n and r50 <= DURATION_TARGET and cpu_ratio <= CPU_TARGET)
        table.rows.append(
            [
                str(step.n),
                f"{len(good)}/{step.n}",
                x(r50),
                x(cpu_ratio),
                x(r99),
                f"{secs(median(dur_docqa))} / {secs(percentile(dur_docqa, 99))}",
                secs(median(dur_direct)),
                f"{ms(median(ft_docqa))} / {ms(median(ft_direct))}",
                f"{ms(percentile(added, 50))} / {ms(percentile(added, 99))}",
                f"{mib(step.peak['web'])} ({mib(step.peak['web'] - step.idle['web'])}) / "
                f"{mib(step.peak['answers'])} ({mib(step.peak['answers'] - step.idle['answers'])})",
                target,
            ]
        )
        errors = collections.Counter(
            (p.docqa.error or ("text differs" if p.docqa.done else "no end")).splitlines()[0][:120]
            for p in step.pairs
            if not p.ok
        )
        if errors:
            table.notes.append(
                f"{step.n} at once: {len(step.pairs) - len(good)} not complete — "
                + "; ".join(f"{n} × {e}" for e, n in errors.most_common())
            )
        busy = ", ".join(f"{name} {seconds:.1f}" for name, seconds in step.cpu.items())
        table.notes.append(
            f"{step.n} at once: CPU seconds during the docqa phase ({step.wall_docqa:.1f} s of wall "
            f"time, 2 cores = {2 * step.wall_docqa:.1f} CPU-s available): {busy}."
        )
    table.notes.append(
        f"Target: 500 at once with none failed, a p50 duration ratio ≤ {DURATION_TARGET}× and CPU web + "
        f"answers ≤ {CPU_TARGET}× the emulator's. Duration runs from "
        "the ask POST (docqa) or the completion POST (direct) to the last delta. CPU web + answers / "
        "emulator: the CPU seconds docqa's web and answers processes spent during the docqa phase "
        "over the emulator's in the same phase (its work producing the same answers)."
    )
    return table


def _answers_settle(timeout: float = 120) -> None:
    """Wait for every answer to be finished before the next step (none left streaming)."""
    from docqa.chat.models import Message, State

    A.wait_until(
        lambda: not Message.objects.filter(state=State.STREAMING).exists(), timeout=timeout, interval=0.5
    )
