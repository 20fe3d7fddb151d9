"""Scale-out, proven: two web processes and two answers workers on one PostgreSQL and one Redis.

A person signs up and works through a round-robin proxy (every request a new connection, so
consecutive requests land on alternate web processes), and the test also talks to each web
process directly where it matters which one answers:

- a row's live events, on an events stream held open on web B, for uploads posted to web A;
- the same file posted to web A and web B at the same moment is stored (and sent to Moonshot)
  once;
- an answer read on web A, the connection dropped mid-stream and resumed on web B with
  `Last-Event-ID`, is exactly the database's final text, nothing repeated or dropped;
- answers asked at once are written by both answers workers, each once (one task run per
  answer, one upstream call per answer, one answer per question).

Runs where the suite has real shared services (CI's suite 2):
DATABASE_URL=postgres://… REDIS_URL=redis://… make test PYTEST_ARGS=tests/deploy
"""

from __future__ import annotations

import html
import os
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg
import pytest
import requests
from django.conf import settings

from docqa.moonshot.sse import SSEParser
from tests.deploy.cluster import API_KEY, Cluster, database_url_beside, redis_url_beside

PASSWORD = "a-Long-passphrase-42"
TIMEOUT = (5, 30)  # connect, read: an event stream that says nothing for 30 s has failed
SAMPLES = {
    "harbour.txt": "The harbour master keeps the tide tables. Ships enter the harbour at high tide "
    "and the pilots guide them past the northern breakwater. " * 12,
    "orchard.txt": "The orchard grows apples and pears. The apple harvest begins in September and "
    "the pickers store the apples in the cold barn beside the orchard. " * 12,
    "lighthouse.txt": "The lighthouse keeper lights the lamp at dusk. The lighthouse beam turns every "
    "ten seconds and warns ships away from the rocks. " * 12,
}
QUESTIONS = [
    "When do ships enter the harbour and who guides them?",
    "When does the apple harvest begin in the orchard?",
    "How often does the lighthouse beam turn?",
    "Where are the apples stored after the harvest?",
    "What does the lighthouse keeper do at dusk?",
]


def _shared_services() -> tuple[str, str] | None:
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")  # the suite's own embedded one is a unix socket
    if database_url.startswith(("postgres://", "postgresql://", "pgsql://")) and redis_url.startswith(
        ("redis://", "rediss://")
    ):
        return database_url, redis_url
    return None


pytestmark = pytest.mark.skipif(
    _shared_services() is None,
    reason="scale-out needs services several processes share: DATABASE_URL=postgres://… and "
    "REDIS_URL=redis://… (CI's suite 2 sets both); SQLite and the embedded Redis are one machine's",
)


@pytest.fixture
def cluster():
    database_url, redis_url = _shared_services()
    # A database of its own beside the suite's, created and dropped here.
    running = Cluster(
        database_url_beside(database_url, "scaleout"), redis_url_beside(redis_url), str(settings.STATIC_ROOT)
    )
    try:
        running.start()
        yield running
    finally:
        print(running.report())  # shown when the test failed
        running.stop()


# -- a person's side: a session, the pages' forms and headers, Server-Sent Events ------------


class Person:
    """A signed-up user's cookies; requests go where `base` says (the proxy or one web process)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()
        # A new connection per request, so the round-robin proxy alternates web processes.
        self.session.headers["Connection"] = "close"

    def twin(self) -> Person:
        """The same person on another connection pool (a second tab, for another thread)."""
        other = Person(self.base)
        other.session.cookies.update(self.session.cookies)
        return other

    def get(self, path: str, *, base: str | None = None, **kwargs) -> requests.Response:
        return self.session.get((base or self.base) + path, timeout=TIMEOUT, **kwargs)

    def post(self, path: str, *, base: str | None = None, **kwargs) -> requests.Response:
        headers = {"X-CSRFToken": self.session.cookies.get("csrftoken", ""), **kwargs.pop("headers", {})}
        return self.session.post(
            (base or self.base) + path, headers=headers, timeout=TIMEOUT, allow_redirects=False, **kwargs
        )

    def sign_up(self, username: str) -> None:
        assert self.get("/accounts/signup/").status_code == 200  # sets the CSRF cookie
        response = self.post(
            "/accounts/signup/",
            data={"username": username, "password1": PASSWORD, "password2": PASSWORD},
        )
        assert response.status_code == 302, response.text[:500]
        assert self.get("/documents/").status_code == 200  # the session works on the next process

    def upload(self, name: str, text: str, *, base: str | None = None) -> tuple[int, bool]:
        """Post one file as the upload script does; (document id, whether it was new)."""
        response = self.post(
            "/documents/upload/",
            base=base,
            files={"files": (name, text.encode(), "text/plain")},
            headers={"X-Requested-With": "XMLHttpRequest"},
        )
        assert response.status_code == 200, response.text[:500]
        assert "upload-error" not in response.text, response.text[:500]
        (pk,) = re.findall(r'data-row-for="(\d+)"', response.text)
        return int(pk), "upload-note" not in response.text

    def statuses(self) -> dict[int, str]:
        page = self.get("/documents/").text
        return {
            int(pk): status for pk, status in re.findall(r'id="document-(\d+)"[^>]*data-status="(\w+)"', page)
        }

    def conversation_new(self, document_ids: list[int]) -> int:
        response = self.post("/chat/new/", data={"documents": document_ids})
        assert response.status_code == 302, response.text[:500]
        return int(re.search(r"/chat/(\d+)/", response.headers["Location"]).group(1))

    def ask(self, conversation_id: int, question: str) -> int:
        response = self.post(f"/chat/{conversation_id}/ask/", data={"question": question})
        assert response.status_code == 302, response.text[:500]
        return int(re.search(r"#answer-(\d+)", response.headers["Location"]).group(1))

    def stream(
        self, path: str, *, base: str | None = None, last_event_id: str | None = None
    ) -> requests.Response:
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        response = self.get(path, base=base, headers=headers, stream=True)
        assert response.status_code == 200, response.text[:500]
        return response


def events(response: requests.Response):
    """The Server-Sent Events of a streamed response, as they arrive (the client's own parser)."""
    parser = SSEParser()
    for chunk in response.iter_content(chunk_size=None):
        yield from parser.feed(chunk)


@dataclass
class Reading:
    """What one connection to an answer's stream delivered."""

    text: str = ""
    last_id: str | None = None
    kinds: list[str] = field(default_factory=list)
    done: bool = False


def answer_read(
    person: Person, answer_id: int, *, base=None, last_event_id=None, content_events=None
) -> Reading:
    """Read an answer's stream to its `done` event, or only until `content_events` content events."""
    reading = Reading(last_id=last_event_id)
    with person.stream(
        f"/chat/answers/{answer_id}/stream/", base=base, last_event_id=last_event_id
    ) as response:
        for event in events(response):
            reading.kinds.append(event.event)
            reading.last_id = event.id or reading.last_id
            if event.event == "snapshot-content":
                reading.text = html.unescape(event.data)
            elif event.event == "content":
                reading.text += html.unescape(event.data)
            elif event.event == "done":
                reading.done = True
                break
            if content_events and reading.kinds.count("content") >= content_events:
                break  # the connection is dropped here, mid-answer
    return reading


def wait_until(predicate, *, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message}")
        time.sleep(0.2)
    return value


# -- the test -------------------------------------------------------------------------------


def test_two_web_processes_two_answers_workers_one_database_one_redis(cluster):
    web_a, web_b = cluster.web_url(0), cluster.web_url(1)
    person = Person(cluster.proxy.url)
    person.sign_up("scaleout-user")

    # Live rows: an events stream held on web B sees the rows of uploads posted to web A.
    names = list(SAMPLES)
    with person.stream("/documents/events/", base=web_b) as live:
        stream = events(live)
        documents = [person.upload(names[0], SAMPLES[names[0]], base=web_a)[0]]
        documents.append(person.upload(names[1], SAMPLES[names[1]])[0])  # through the proxy

        # The same file to both web processes at once: one document, one stored file.
        def upload_twice(base: str) -> tuple[int, bool]:
            return person.twin().upload(names[2], SAMPLES[names[2]], base=base)

        with ThreadPoolExecutor(2) as pool:
            both = list(pool.map(upload_twice, [web_a, web_b]))
        assert both[0][0] == both[1][0], both
        assert sorted(created for _pk, created in both) == [False, True], both
        documents.append(both[0][0])
        unseen = {f"document-{pk}" for pk in documents}
        deadline = time.monotonic() + 30
        for event in stream:
            unseen.discard(event.event)
            if not unseen or time.monotonic() > deadline:
                break
        assert not unseen, f"web B's events stream never announced {unseen}"

    wait_until(
        lambda: all(person.statuses().get(pk) == "ready" for pk in documents),
        timeout=30,
        message="documents ready",
    )

    # Answers that stream for a few seconds, so a reconnect lands mid-answer.
    cluster.emulator_control().configure(first_token_delay=0.1, chunk_delay=0.02, chunk_size_words=2)
    conversations = [person.conversation_new(documents) for _ in range(4)]

    # A mid-stream reconnect that lands on the other web process.
    first = person.ask(conversations[0], QUESTIONS[0])
    on_a = answer_read(person, first, base=web_a, content_events=3)
    assert not on_a.done and on_a.last_id, on_a
    on_b = answer_read(person, first, base=web_b, last_event_id=on_a.last_id)
    assert on_b.done, on_b
    # Resumed right after the last event web A sent (no snapshot), and the answer still going.
    assert "content" in on_b.kinds and "snapshot-content" not in on_b.kinds, on_b.kinds
    read_first = on_a.text + on_b.text

    # Four questions at once, in four conversations (one answer at a time per conversation).
    def ask_and_read(conversation_id: int, question: str) -> tuple[int, str]:
        tab = person.twin()
        answer_id = tab.ask(conversation_id, question)
        reading = answer_read(tab, answer_id)
        assert reading.done, reading
        return answer_id, reading.text

    with ThreadPoolExecutor(4) as pool:
        read = dict(pool.map(ask_and_read, conversations, QUESTIONS[1:]))
    read[first] = read_first

    # Every answer complete, once, and what was streamed is exactly what was stored.
    with psycopg.connect(cluster.database_url) as db:

        def answers():
            return db.execute(
                "SELECT id, question_id, state, content FROM chat_message WHERE role = 'assistant' ORDER BY id"
            ).fetchall()

        rows = wait_until(
            lambda: (rows := answers()) and all(state == "complete" for _i, _q, state, _c in rows) and rows,
            timeout=20,
            message="answers complete in the database",
        )
        stored_files = db.execute("SELECT remote_id FROM documents_storedfile").fetchall()
        document_count = db.execute("SELECT count(*) FROM documents_document").fetchone()[0]
    assert sorted(answer_id for answer_id, *_ in rows) == sorted(read), rows
    assert len({question for _a, question, _s, _c in rows}) == len(rows), "a question answered twice"
    for answer_id, _question, _state, content in rows:
        assert content, answer_id
        assert read[answer_id] == content, f"answer {answer_id}: streamed text differs from the stored one"

    # Nothing duplicated upstream: one remote copy per stored file, one completion per answer.
    assert document_count == len(documents) == len(stored_files) == 3
    listing = requests.get(
        f"{cluster.emulator_url}/files", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
    ).json()["data"]
    assert sorted(entry["id"] for entry in listing) == sorted(remote_id for (remote_id,) in stored_files), (
        listing
    )
    assert Counter(entry["filename"] for entry in listing).most_common(1)[0][1] == 1, listing
    stats = cluster.emulator_control().stats()
    completions = sum(count for route, count in stats["requests"].items() if "chat/completions" in route)
    assert completions == len(rows), stats

    # Both answers workers wrote answers; each answer was handed out and written once.
    taken = {name: cluster.answers_taken(name) for name in cluster.ANSWERS}
    print(f"answers (received, complete) per worker {taken}; proxied connections {cluster.proxy.connections}")
    assert all(complete for _received, complete in taken.values()), taken
    assert sum(received for received, _c in taken.values()) == len(rows), taken
    assert sum(complete for _r, complete in taken.values()) == len(rows), taken
    # Both web processes served the proxied requests; nothing crashed along the way.
    assert all(cluster.proxy.connections), cluster.proxy.connections
    assert all(proc.alive() for proc in cluster.procs.values()), cluster.report()
    crashed = [name for name, proc in cluster.procs.items() if "Traceback" in proc.log_text()]
    assert not crashed, cluster.report()
