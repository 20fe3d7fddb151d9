"""`python -m bench` (`make bench`): run every benchmark against a fresh docqa and print a table.

    python -m bench            # the full run (about 10–15 minutes on 2 cores)
    python -m bench --smoke    # a short run for CI (a minute or two)
    python -m bench --only relay,upload

Each figure is a ratio against a baseline measured side by side in the same run; absolute
times are printed beside it for context. Targets are reported, never asserted: the exit
status is non-zero only when the app is broken (the stack does not start, a benchmark
cannot run, or answers/documents fail where nothing was injected).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
import time
import traceback
from pathlib import Path

from bench.common import Table, machine, text_document, upload_and_wait
from bench.stack import Stack, StackOptions

HERE = Path(__file__).resolve().parent

FULL = {
    "relay_questions": 50,
    "concurrency": [50, 200, 500, 1000],
    "upload_mb": [1, 10, 100],
    "ingest_docs": 200,
    "many_docs": 50,
    "many_chars": 10_000,
    "many_asks": 20,
    "huge_chars": 200_000,
}
SMOKE = {
    "relay_questions": 5,
    "concurrency": [20],
    "upload_mb": [1, 10],
    "ingest_docs": 10,
    "many_docs": 10,
    "many_chars": 10_000,
    "many_asks": 4,
    "huge_chars": 0,
}
BENCHMARKS = ("relay", "concurrency", "upload", "ingest", "many")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="a short run for CI")
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help="comma-separated: " + ", ".join(BENCHMARKS)
    )
    parser.add_argument(
        "--output", type=Path, help="where to write the Markdown (default bench/results[-smoke].md)"
    )
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (default: SQLite, as `make run`)")
    parser.add_argument("--keep", action="store_true", help="keep the run's var dir (logs) afterwards")
    parser.add_argument(
        "--concurrency", help="comma-separated numbers of answers at once (default 50,200,500,1000)"
    )
    parser.add_argument("--questions", type=int, help="questions in the relay benchmark (default 50)")
    parser.add_argument("--web-workers", type=int, default=1, help="uvicorn --workers (default 1)")
    parser.add_argument("--answer-workers", type=int, default=1, help="answers worker processes (default 1)")
    args = parser.parse_args(argv)
    plan = dict(SMOKE if args.smoke else FULL)
    if args.concurrency:
        plan["concurrency"] = [int(n) for n in args.concurrency.split(",") if n.strip()]
    if args.questions:
        plan["relay_questions"] = args.questions
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(only) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    output = args.output or HERE / ("results-smoke.md" if args.smoke else "results.md")

    options = StackOptions(
        answer_threads=max(plan["concurrency"]) if "concurrency" in only else 100,
        file_workers=2,
        web_workers=args.web_workers,
        answer_workers=args.answer_workers,
        database_url=args.database_url,
        # A Moonshot account at tier 5 may hold 1,000 requests at once; docqa's default of 50
        # (tier 1) would queue the rest and measure the account instead of the app.
        extra_env={"MOONSHOT_MAX_CONCURRENCY": "1000"},
    )
    tables: list[Table] = []
    broken: list[str] = []
    started = time.monotonic()
    started_at = datetime.datetime.now().astimezone()
    with Stack(options, keep=args.keep) as stack:
        print(
            f"docqa bench: var dir {stack.var_dir}, web {stack.base_url}, emulator {stack.emulator_url}",
            file=sys.stderr,
        )
        from bench import app as A
        from bench import documents, streams

        user = A.user_create()
        docqa = A.Docqa(stack.base_url)
        seed = text_document(stack.var_dir / "tides.txt", chars=8000)
        seed_ids = asyncio.run(upload_and_wait(docqa, user, [seed]))

        def run(name: str, fn, *a, **kw) -> None:
            if name not in only:
                return
            print(f"… {name}", file=sys.stderr)
            t0 = time.monotonic()
            try:
                table = fn(*a, **kw)
            except Exception:  # noqa: BLE001 - reported, and the run is marked broken
                broken.append(f"{name}: {traceback.format_exc()}")
                print(broken[-1], file=sys.stderr)
                return
            table.notes.append(f"Ran in {time.monotonic() - t0:.0f} s.")
            tables.append(table)
            print(table.markdown(), file=sys.stderr)

        run("relay", streams.relay, stack, user, seed_ids, questions=plan["relay_questions"])
        if "concurrency" in only:
            # A few users, each with the same document (stored once), sharing the conversations.
            users = [user] + [A.user_create() for _ in range(4)]
            pairs = []
            for extra in users:
                ids = asyncio.run(upload_and_wait(docqa, extra, [seed])) if extra is not user else seed_ids
                pairs.append((extra, ids[0]))
            run("concurrency", streams.concurrent, stack, pairs, steps=plan["concurrency"], timeout=180)
        run("upload", documents.upload_memory, stack, A.user_create(), sizes_mb=plan["upload_mb"])
        run("ingest", documents.ingest, stack, A.user_create, count=plan["ingest_docs"])
        if "many" in only:
            run(
                "many",
                documents.many_documents,
                stack,
                A.user_create(),
                documents=plan["many_docs"],
                chars_each=plan["many_chars"],
                asks=plan["many_asks"],
            )
            if plan["huge_chars"]:
                run(
                    "many",
                    documents.oversized_refusal,
                    stack,
                    A.user_create(),
                    documents=plan["many_docs"],
                    chars_each=plan["huge_chars"],
                )
        if args.smoke:
            broken += smoke_breakage(tables)

    elapsed = time.monotonic() - started
    header = [
        f"## Benchmarks{' (smoke)' if args.smoke else ''}",
        "",
        f"Run {started_at:%Y-%m-%d %H:%M %Z} on {machine()}, in {elapsed / 60:.1f} min; "
        f"{'PostgreSQL' if args.database_url else 'SQLite'}, embedded Redis, the offline emulator as upstream, "
        "everything on 127.0.0.1. Reproduce with `make bench` (or `python -m bench`).",
        "",
    ]
    text = "\n".join(header) + "\n".join(t.markdown() for t in tables)
    if broken:
        text += "\n### Broken\n\n" + "\n".join(f"- {b.splitlines()[0]}" for b in broken) + "\n"
    output.write_text(text)
    print(text)
    return 1 if broken else 0


def smoke_breakage(tables: list[Table]) -> list[str]:
    """What counts as broken in a smoke run: answers or documents that failed with no fault injected."""
    problems = []
    for table in tables:
        for row in table.rows:
            for cell in row:
                if (
                    "/" in cell
                    and cell.replace(" ", "").split("/")[0].isdigit()
                    and table.title.startswith("2.")
                ):
                    done, total = cell.split("/")
                    if done.strip() != total.strip():
                        problems.append(f"{table.title}: only {cell} answers completed")
                    break
        if table.title.startswith("4.") and table.rows and table.rows[0][5] != "0":
            problems.append(f"{table.title}: {table.rows[0][5]} documents failed with no fault injected")
    return problems


if __name__ == "__main__":
    sys.exit(main())
