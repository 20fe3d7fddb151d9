"""`python -m bench.citations`: how long verifying an answer's quotes takes.

The issue's case: an answer with 10 quotes over a conversation of 50 documents of 200 KB
(synthetic English and Chinese text). Of the 10 quotes, 5 are exact (with the model's usual
drift in case, quotes and spacing), 3 are near-misses within the tolerance, 2 are invented.
"Cold" clears the normalised-text cache first (the first answer after a worker starts: every
cited document is normalised); "warm" is every later answer of the conversation.
Target (issue 13): <= 50 ms. Reported, never asserted.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from docqa.chat import citations_match
from docqa.chat.citations import citations_check

DOCUMENTS = 50
DOCUMENT_CHARS = 200_000


def _documents(rng: random.Random) -> list[str]:
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10)))
        for _ in range(5000)
    ]
    hanzi = [chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(3000)]
    documents = []
    for number in range(DOCUMENTS):
        parts, size = [], 0
        while size < DOCUMENT_CHARS:
            if number % 3 == 2:
                sentence = "".join(rng.choice(hanzi) for _ in range(rng.randint(10, 40))) + "。"
            else:
                sentence = " ".join(rng.choice(words) for _ in range(rng.randint(6, 20))).capitalize() + ". "
            if rng.random() < 0.002:
                sentence = f"\n\nPage {size // 3000 + 1}\n"
            parts.append(sentence)
            size += len(sentence)
        documents.append("".join(parts)[:DOCUMENT_CHARS])
    return documents


def _answer(rng: random.Random, documents: list[str]) -> str:
    pieces = []
    for k in range(10):
        number = rng.randrange(len(documents)) + 1
        text = documents[number - 1]
        start = rng.randrange(len(text) - 400)
        quote = text[start : start + rng.randint(60, 300)]
        if k < 5:
            quote = quote.upper() if k % 2 else quote.replace(" ", "  ")
        elif k < 8:
            chars = list(quote)
            for _ in range(len(chars) // 25):
                chars[rng.randrange(len(chars))] = "#"
            quote = "".join(chars)
        else:
            other = documents[(number + 7) % len(documents)]
            at = rng.randrange(len(other) - 400)
            quote = "Invented: " + other[at : at + 150][::-1]
        pieces.append(f"Claim {k} 【{number}†{quote.replace('【', '').replace('】', '')}】.")
    return " ".join(pieces)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=30, help="answers to time (default 30)")
    args = parser.parse_args()
    rng = random.Random(13)
    documents = _documents(rng)
    answers = [_answer(rng, documents) for _ in range(args.answers)]
    ids = list(range(1, DOCUMENTS + 1))
    times: dict[str, list[float]] = {"cold wall": [], "cold cpu": [], "warm wall": [], "warm cpu": []}
    verified = 0
    for answer in answers:
        for kind in ("cold", "warm"):
            if kind == "cold":
                citations_match._prepare.cache_clear()
            wall, cpu = time.perf_counter(), time.process_time()
            results = citations_check(answer, documents, ids)
            times[f"{kind} wall"].append((time.perf_counter() - wall) * 1000)
            times[f"{kind} cpu"].append((time.process_time() - cpu) * 1000)
        verified += sum(c.verified for c in results)
    print(f"{args.answers} answers × 10 quotes over {DOCUMENTS} documents of {DOCUMENT_CHARS // 1000} KB")
    print(f"verified {verified} of {10 * args.answers} quotes (8 of 10 per answer expected)")
    # CPU time too: on a shared machine the wall clock also counts waiting for a core.
    for name, values in times.items():
        print(f"{name}: median {statistics.median(values):.1f} ms, p95 {_percentile(values, 0.95):.1f} ms")


if __name__ == "__main__":
    main()
