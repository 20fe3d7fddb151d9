"""Pages and ownership: every route 404s for another user's ids; bad input is refused clearly."""

import threading

import pytest
from django.db import connection, transaction
from django.urls import reverse

from docqa.chat import generation, services
from docqa.chat.generation import GenerationOutcome
from docqa.chat.models import Conversation, Message, Role, State
from docqa.documents.models import Status
from tests.factories import exchange_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(user, make_conversation):
    return make_conversation(user)


@pytest.fixture
def answer(conversation):
    return exchange_create(conversation=conversation, question="What grew?", content="Revenue.")[1]


CONVERSATION_ROUTES = [
    ("get", "chat:detail"),
    ("post", "chat:ask"),
    ("post", "chat:model"),
    ("get", "chat:rename"),
    ("post", "chat:rename"),
    ("get", "chat:delete"),
    ("post", "chat:delete"),
    ("get", "chat:export"),
]
ANSWER_ROUTES = [("get", "chat:answer"), ("post", "chat:answer_stop"), ("post", "chat:answer_regenerate")]


@pytest.mark.parametrize(("method", "name"), CONVERSATION_ROUTES)
def test_conversation_routes_404_for_another_user(client, other_user, conversation, answer, method, name):
    client.force_login(other_user)
    response = getattr(client, method)(
        reverse(name, args=[conversation.pk]), {"question": "hi", "title": "x", "model": "moonshot-v1-8k"}
    )
    assert response.status_code == 404
    assert Conversation.objects.filter(pk=conversation.pk, title=conversation.title).exists()
    assert Message.objects.filter(conversation=conversation).count() == 2


@pytest.mark.parametrize(("method", "name"), ANSWER_ROUTES)
def test_answer_routes_404_for_another_user(client, other_user, answer, method, name):
    client.force_login(other_user)
    response = getattr(client, method)(reverse(name, args=[answer.pk]))
    assert response.status_code == 404
    assert Message.objects.get(pk=answer.pk).state == State.COMPLETE


def test_list_and_search_show_only_own_conversations(client, user, other_user, make_conversation, answer):
    theirs = make_conversation(other_user)
    services.conversation_rename(conversation=theirs, title="Secret plans")
    client.force_login(user)
    page = client.get(reverse("chat:list")).content.decode()
    assert answer.conversation.title in page and "Secret plans" not in page
    assert "Secret plans" not in client.get(reverse("chat:list"), {"q": "Secret"}).content.decode()
    found = client.get(reverse("chat:list"), {"q": "Revenue"}).content.decode()
    assert answer.conversation.title in found
    assert 'data-role="no-results"' in client.get(reverse("chat:list"), {"q": "zzz-nothing"}).content.decode()


def test_new_lists_only_own_ready_documents(client, user, other_user, make_document):
    mine = make_document(user, "mine.pdf")
    make_document(user, "pending.pdf", status=Status.EXTRACTING)
    make_document(other_user, "theirs.pdf")
    client.force_login(user)
    page = client.get(reverse("chat:new")).content.decode()
    assert "mine.pdf" in page and "pending.pdf" not in page and "theirs.pdf" not in page
    assert f'<label for="document-{mine.pk}">mine.pdf</label>' in page
    assert ">Start<" in page


def test_new_refuses_another_users_document(client, user, other_user, make_document):
    theirs = make_document(other_user, "theirs.pdf")
    client.force_login(user)
    response = client.post(reverse("chat:new"), {"documents": [theirs.pk]})
    assert response.status_code == 400
    assert not Conversation.objects.exists()


def test_new_refuses_no_documents_and_not_ready(client, user, make_document):
    pending = make_document(user, "pending.pdf", status=Status.EXTRACTING)
    client.force_login(user)
    assert client.post(reverse("chat:new"), {}).status_code == 400
    response = client.post(reverse("chat:new"), {"documents": [pending.pk]})
    assert response.status_code == 400 and "not ready" in response.content.decode()
    assert not Conversation.objects.exists()


def test_new_refuses_documents_too_long_and_names_them(client, user, make_document):
    big = make_document(user, "huge.pdf", tokens=300_000)
    small = make_document(user, "small.pdf", tokens=1000)
    client.force_login(user)
    response = client.post(reverse("chat:new"), {"documents": [small.pk, big.pk]})
    assert response.status_code == 400
    assert "huge.pdf" in response.content.decode().split("Leave out")[1]


def test_start_keeps_document_order_and_opens_the_conversation(client, user, make_document):
    a, b = make_document(user, "a.pdf"), make_document(user, "b.pdf")
    client.force_login(user)
    response = client.post(reverse("chat:new"), {"documents": [b.pk, a.pk]})
    conversation = Conversation.objects.get()
    assert response.url == conversation.get_absolute_url()
    assert [d.filename for d in conversation.ordered_documents()] == ["b.pdf", "a.pdf"]
    page = client.get(response.url).content.decode()
    assert '<label for="question-input" class="chat-ask-label">Question</label>' in page
    assert ">Ask</button>" in page


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("", "Type a question first"),
        ("   \n ", "Type a question first"),
        ("x" * 32_001, "the limit is 32,000"),
    ],
)
def test_ask_refuses_bad_questions_and_keeps_the_text(client, user, conversation, question, expected):
    client.force_login(user)
    response = client.post(
        reverse("chat:ask", args=[conversation.pk]), {"question": question}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert expected in body
    assert response["HX-Retarget"] == "#ask-form"
    assert not Message.objects.exists()
    if question.strip():
        assert question[:100] in body


def test_ask_saves_question_and_streaming_answer(client, user, conversation):
    client.force_login(user)
    response = client.post(reverse("chat:ask", args=[conversation.pk]), {"question": "What grew?"})
    assert response.status_code == 302
    question, answer = Message.objects.order_by("id")
    assert (
        question.content == "What grew?" and answer.state == State.STREAMING and answer.question == question
    )
    conversation.refresh_from_db()
    assert conversation.title == "What grew?"


def test_double_submit_is_refused_while_an_answer_streams(client, user, conversation):
    client.force_login(user)
    client.post(reverse("chat:ask", args=[conversation.pk]), {"question": "one"})
    response = client.post(reverse("chat:ask", args=[conversation.pk]), {"question": "one"})
    assert response.status_code == 422
    assert "still being written" in response.content.decode()
    assert Message.objects.filter(role=Role.USER).count() == 1


def test_ask_rate_limit(client, user, make_conversation, settings):
    settings.DOCQA_ASK_RATE_LIMIT = 2
    client.force_login(user)
    for n in range(2):
        conversation = make_conversation(user)
        assert (
            client.post(reverse("chat:ask", args=[conversation.pk]), {"question": f"q{n}"}).status_code == 302
        )
    conversation = make_conversation(user)
    response = client.post(reverse("chat:ask", args=[conversation.pk]), {"question": "q3"})
    assert response.status_code == 422 and "faster than 2 questions a minute" in response.content.decode()


def test_ask_refused_when_documents_were_deleted(client, user, conversation):
    conversation.documents.all().delete()
    client.force_login(user)
    response = client.post(reverse("chat:ask", args=[conversation.pk]), {"question": "hi"})
    assert response.status_code == 422 and "no documents left" in response.content.decode()


def test_rename_delete_export(client, user, conversation, answer):
    client.force_login(user)
    client.post(reverse("chat:rename", args=[conversation.pk]), {"title": "  Acme   review "})
    conversation.refresh_from_db()
    assert conversation.title == "Acme review" and not conversation.title_is_auto
    export = client.get(reverse("chat:export", args=[conversation.pk]))
    assert export["Content-Disposition"] == 'attachment; filename="acme-review.md"'
    text = export.content.decode()
    assert text.startswith("# Acme review\n") and "What grew?" in text and "Revenue." in text
    assert client.get(reverse("chat:delete", args=[conversation.pk])).status_code == 200
    client.post(reverse("chat:delete", args=[conversation.pk]))
    assert not Conversation.objects.exists() and not Message.objects.exists()


def test_model_choice(client, user, conversation):
    client.force_login(user)
    client.post(reverse("chat:model", args=[conversation.pk]), {"model": "moonshot-v1-auto"})
    conversation.refresh_from_db()
    assert conversation.model == "moonshot-v1-auto"
    client.post(reverse("chat:model", args=[conversation.pk]), {"model": "gpt-17"})
    conversation.refresh_from_db()
    assert conversation.model == "moonshot-v1-auto"


def test_stop_before_the_task_starts_stops_at_once(client, user, conversation):
    client.force_login(user)
    client.post(reverse("chat:ask", args=[conversation.pk]), {"question": "hi"})
    answer = Message.objects.get(role=Role.ASSISTANT)
    client.post(reverse("chat:answer_stop", args=[answer.pk]))
    answer.refresh_from_db()
    assert answer.state == State.STOPPED
    # A late task does nothing.
    assert generation.answer_generate(answer_id=answer.pk) == GenerationOutcome.FINISHED


def test_regenerate_only_the_last_finished_answer(client, user, conversation, answer):
    client.force_login(user)
    response = client.post(reverse("chat:answer_regenerate", args=[answer.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    new = Message.objects.filter(role=Role.ASSISTANT).latest("id")
    assert new.pk != answer.pk and new.state == State.STREAMING and new.question_id == answer.question_id
    # The earlier answer is kept as version 1 of 2, hidden behind the new one.
    assert Message.objects.filter(pk=answer.pk).exists()
    html = response.content.decode()
    assert 'data-state="streaming"' in html and f'id="answer-{answer.pk}"' in html and "2/2" in html
    # While the new version is written, neither version can be regenerated again.
    again = client.post(reverse("chat:answer_regenerate", args=[answer.pk]))
    assert again.status_code == 302 and Message.objects.filter(role=Role.ASSISTANT).count() == 2


def test_finished_answer_renders_sanitised_markdown(client, user, conversation, answer):
    answer.content = "**bold** <script>alert(1)</script> [x](javascript:alert(1))"
    answer.save()
    client.force_login(user)
    page = client.get(reverse("chat:detail", args=[conversation.pk])).content.decode()
    assert "<strong>bold</strong>" in page
    assert "<script>alert(1)</script>" not in page
    assert 'href="javascript' not in page


def test_contract_labels_in_chinese(client, user, make_document):
    document = make_document(user, "报告.pdf")
    client.force_login(user)
    client.cookies["django_language"] = "zh-hans"
    page = client.get(reverse("chat:new"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert ">开始<" in page and "报告.pdf</label>" in page
    response = client.post(reverse("chat:new"), {"documents": [document.pk]}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    conversation = Conversation.objects.get()
    assert conversation.system_prompt.startswith("你是 Kimi")
    page = client.get(response.url, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert 'class="chat-ask-label">问题</label>' in page and ">提问</button>" in page


@pytest.fixture
def logged_in(transactional_db, client, user):
    client.force_login(user)  # before the database is made busy: logging in writes the session
    return client


@pytest.fixture
def database_busy(transactional_db):
    """Another connection holds a write transaction (locking every conversation row) while this
    thread's connection gives up after 0.2 s instead of 20: a saturated database, for real."""

    def hold(ready: threading.Event, release: threading.Event):
        try:
            with transaction.atomic():  # SQLite: BEGIN IMMEDIATE takes the one write lock
                list(Conversation.objects.select_for_update())
                ready.set()
                release.wait(30)
        finally:
            connection.close()

    ready, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=hold, args=(ready, release), daemon=True)
    options = connection.settings_dict.setdefault("OPTIONS", {})
    saved_timeout = options.get("timeout")
    if connection.vendor == "sqlite":
        options["timeout"] = 0.2
        connection.close()  # reopened with the short busy timeout
    else:
        connection.cursor().execute("SET lock_timeout = '200ms'")
    holder.start()
    assert ready.wait(10)
    try:
        yield
    finally:
        release.set()
        holder.join(10)
        if connection.vendor == "sqlite":
            options["timeout"] = saved_timeout
            connection.close()
        else:
            connection.cursor().execute("SET lock_timeout = 0")


@pytest.mark.parametrize("htmx", [False, True])
def test_ask_on_a_saturated_database_says_busy_and_keeps_the_question(
    transactional_db, logged_in, conversation, database_busy, htmx
):
    client = logged_in
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = client.post(
        reverse("chat:ask", args=[conversation.pk]), {"question": "What grew in spring?"}, **headers
    )
    body = response.content.decode()
    assert response.status_code == (200 if htmx else 503)
    assert "busy right now" in body and "What grew in spring?" in body
    assert response["Retry-After"] == "5"
    if htmx:
        assert response["HX-Retarget"] == "#ask-form"
    assert not Message.objects.exists()


def test_new_refuses_an_id_too_large_to_be_one_with_a_clear_message(client, user, make_document):
    make_document(user, "a.pdf")
    client.force_login(user)
    response = client.post(reverse("chat:new"), {"documents": ["1" * 40]})
    assert response.status_code == 400 and "is not a valid document id" in response.content.decode()
    assert client.get(reverse("chat:new") + "?document=" + "9" * 40).status_code == 400
    assert not Conversation.objects.exists()
