"""The bad-input and abuse catalogue, as data: one row per thing a careless or hostile client does.

Each case names who sends it (`alice` owns everything in the world the test builds, `mallory`
owns nothing of hers, `anon` is logged out), the request, and what a clear answer looks like.
The test runs every case against the same world and then checks that nothing of alice's was
lost or changed, and that none of her text reached anyone else.

Placeholders in paths: {doc} alice's Ready document, {pending} her document still extracting,
{conv} her conversation, {answer} its finished answer, {streaming} an answer still being
written (in {busy}, a second conversation), {mallory_doc} mallory's own document.
"""

from __future__ import annotations

from dataclasses import dataclass, field

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)><a href="javascript:alert(1)">j</a>'
# An answer's citations at their worst ({cited_answer}, over alice's notes and the document
# whose name is XSS): HTML in a verified quote, a quote naming the XSS-named document, markers
# nested and unbalanced, a number outside the list, a bare `†`, and a 50 KB quote.
HOSTILE_CITATIONS = (
    f"Verified: 【1†ALICE-SECRET quarterly figures. {XSS}】\n\n"
    f"Named: 【2†{XSS}】 and 【9†{XSS}】 and 【†{XSS}】\n\n"
    f"Nested: 【1†outer 【2†inner {XSS}】 tail】 stray 】 and 【1 open {XSS}\n\n"
    f"Long: 【1†{'x' * 50_000}{XSS}】\n\n"
    f"Unclosed at the end: 【1†{XSS}"
)


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    who: str = "alice"
    data: dict = field(default_factory=dict)
    # Files to upload: (name, bytes); sent as multipart field `files`.
    files: tuple = ()
    csrf: bool = True
    xhr: bool = False
    status: tuple[int, ...] = (200,)
    # Substrings the answer must contain (a clear message) and must not (leaks).
    says: tuple[str, ...] = ()
    never: tuple[str, ...] = ()
    # The answer must hold no live markup from the payloads: no script running alert, no
    # on* handler, no javascript: link, no remote image (checked on parsed tags, not text).
    inert: bool = True
    settings: dict = field(default_factory=dict)
    # Follow a redirect and read the page it leads to (messages are shown there).
    follow: bool = False
    # Extra request headers (Django's META names, e.g. HTTP_LAST_EVENT_ID).
    headers: dict = field(default_factory=dict)
    # Where a redirect must lead (the first response's Location), when it matters.
    location: str = ""


def _foreign(method: str, path: str, what: str) -> Case:
    return Case(
        f"mallory {method} {what}", method, path, who="mallory", status=(404,), never=("ALICE-SECRET",)
    )


CASES: list[Case] = [
    # --- bad uploads --------------------------------------------------------------------------------
    Case(
        "upload with no file",
        "post",
        "/documents/upload/",
        xhr=True,
        status=(400,),
        says=("Choose at least one file",),
    ),
    Case(
        "upload an .exe",
        "post",
        "/documents/upload/",
        xhr=True,
        files=(("tool.exe", b"MZ\x90\x00"),),
        status=(400,),
        says=(".exe files are not supported",),
    ),
    Case(
        "upload a name with no extension",
        "post",
        "/documents/upload/",
        xhr=True,
        files=(("README", b"hello"),),
        status=(400,),
        says=("no file extension",),
    ),
    Case(
        "upload an empty file",
        "post",
        "/documents/upload/",
        xhr=True,
        files=(("empty.txt", b""),),
        status=(400,),
        says=("is empty",),
    ),
    Case(
        "upload a name that is only dots",
        "post",
        "/documents/upload/",
        xhr=True,
        files=(("..", b"x"),),
        status=(400,),
        says=(),
    ),
    Case(
        "upload a path-traversal name",
        "post",
        "/documents/upload/",
        xhr=True,
        files=(("../../etc/passwd.txt", b"root:x:0:0"),),
        status=(200,),
        says=("passwd.txt",),
        never=("../",),
    ),
    Case(
        "upload an XSS file name",
        "post",
        "/documents/upload/",
        xhr=True,
        files=((XSS + ".txt", b"xss name"),),
        status=(200,),
    ),
    Case(
        "upload a name with control characters",
        "post",
        "/documents/upload/",
        xhr=True,
        files=(("bad\x00\x1bname\x7f.txt", b"ctl"),),
        status=(200,),
        says=("badname.txt",),
    ),
    Case(
        "upload a 300-character name",
        "post",
        "/documents/upload/",
        xhr=True,
        files=(("n" * 300 + ".txt", b"long name"),),
        status=(200,),
        says=("….txt",),
    ),
    Case(
        "upload a name longer than a part header may be",
        "post",
        "/documents/upload/",
        xhr=True,
        files=(("n" * 2000 + ".txt", b"longer name"),),
        status=(400,),
        says=("could not read that request",),
    ),
    Case(
        "upload over the size limit",
        "post",
        "/documents/upload/",
        xhr=True,
        files=(("big.txt", b"x" * 5000),),
        status=(400,),
        says=("larger than the",),
        settings={"DOCQA_MAX_UPLOAD_BYTES": 1024},
    ),
    Case(
        "upload without the CSRF token",
        "post",
        "/documents/upload/",
        xhr=True,
        files=(("a.txt", b"a"),),
        csrf=False,
        status=(403,),
    ),
    Case("upload by GET", "get", "/documents/upload/", status=(405,)),
    Case(
        "upload while logged out",
        "post",
        "/documents/upload/",
        who="anon",
        files=(("a.txt", b"a"),),
        status=(302,),
        says=(),
    ),
    # --- bad ids ------------------------------------------------------------------------------------
    Case("document that does not exist", "get", "/documents/987654/", status=(404,)),
    Case("document id past 64 bits", "get", "/documents/99999999999999999999999/", status=(404,)),
    Case("conversation id past 64 bits", "get", "/chat/99999999999999999999999/", status=(404,)),
    Case(
        "answer stream id past 64 bits", "get", "/chat/answers/99999999999999999999999/stream/", status=(404,)
    ),
    Case("negative document id", "get", "/documents/-1/", status=(404,)),
    Case("answer id that is a question's", "get", "/chat/answers/{question}/", status=(404,)),
    Case("stream of an answer that does not exist", "get", "/chat/answers/987654/stream/", status=(404,)),
    Case(
        "stream while logged out",
        "get",
        "/chat/answers/{answer}/stream/",
        who="anon",
        status=(404, 302),
        never=("ALICE-SECRET",),
    ),
    Case("document events while logged out", "get", "/documents/events/", who="anon", status=(403, 302)),
    # --- other users' objects on every route --------------------------------------------------------
    _foreign("get", "/documents/{doc}/", "document page"),
    _foreign("get", "/documents/{doc}/row/", "document row"),
    _foreign("post", "/documents/{doc}/retry/", "document retry"),
    _foreign("get", "/documents/{doc}/delete/", "document delete page"),
    _foreign("post", "/documents/{doc}/delete/", "document delete"),
    _foreign("get", "/chat/{conv}/", "conversation page"),
    Case(
        "mallory asks in alice's conversation",
        "post",
        "/chat/{conv}/ask/",
        who="mallory",
        data={"question": "leak?"},
        status=(404,),
    ),
    _foreign("post", "/chat/{conv}/model/", "model choice"),
    _foreign("get", "/chat/{conv}/rename/", "rename page"),
    Case(
        "mallory renames alice's conversation",
        "post",
        "/chat/{conv}/rename/",
        who="mallory",
        data={"title": "pwned"},
        status=(404,),
    ),
    _foreign("get", "/chat/{conv}/delete/", "conversation delete page"),
    _foreign("post", "/chat/{conv}/delete/", "conversation delete"),
    _foreign("get", "/chat/{conv}/export/", "export"),
    _foreign("get", "/chat/answers/{answer}/", "answer"),
    _foreign("get", "/chat/answers/{answer}/stream/", "answer stream"),
    _foreign("post", "/chat/answers/{streaming}/stop/", "stop"),
    _foreign("post", "/chat/answers/{answer}/regenerate/", "regenerate"),
    Case(
        "mallory starts a chat with alice's document",
        "post",
        "/chat/new/",
        who="mallory",
        data={"documents": ["{doc}"]},
        status=(400,),
        never=("ALICE-SECRET",),
    ),
    Case(
        "mallory's search finds nothing of alice's",
        "get",
        "/chat/?q=answer",
        who="mallory",
        status=(200,),
        never=("ALICE-SECRET", "Alice's chat"),
    ),
    Case(
        "mallory's document list shows nothing of alice's",
        "get",
        "/documents/",
        who="mallory",
        status=(200,),
        never=("alice-notes.txt",),
    ),
    # --- bad questions and conversations ------------------------------------------------------------
    Case(
        "empty question",
        "post",
        "/chat/{conv}/ask/",
        data={"question": ""},
        status=(422,),
        says=("Type a question first",),
    ),
    Case(
        "whitespace-only question",
        "post",
        "/chat/{conv}/ask/",
        data={"question": " \n\t "},
        status=(422,),
        says=("Type a question first",),
    ),
    Case(
        "question over the length limit",
        "post",
        "/chat/{conv}/ask/",
        data={"question": "q" * 40_000},
        status=(422,),
        says=("the limit is",),
    ),
    Case(
        "ask while the last answer is still being written (double submit)",
        "post",
        "/chat/{busy}/ask/",
        data={"question": "again?"},
        status=(422,),
        says=("still being written",),
    ),
    Case(
        "ask without the CSRF token",
        "post",
        "/chat/{conv}/ask/",
        data={"question": "hi"},
        csrf=False,
        status=(403,),
    ),
    Case("ask by GET", "get", "/chat/{conv}/ask/", status=(405,)),
    Case(
        "ask with a body past the form limit",
        "post",
        "/chat/{conv}/ask/",
        data={"question": "q" * 3_000_000},
        status=(400,),
        says=("could not read that request",),
    ),
    Case(
        "start a chat with no documents",
        "post",
        "/chat/new/",
        data={},
        status=(400,),
        says=("Choose at least one document",),
    ),
    Case(
        "start a chat with ids that are not numbers",
        "post",
        "/chat/new/",
        data={"documents": ["x", "1e9", "' OR 1=1"]},
        status=(400,),
        says=("is not a valid document id",),
    ),
    Case(
        "start a chat with a document still extracting",
        "post",
        "/chat/new/",
        data={"documents": ["{pending}"]},
        status=(400,),
        says=("not ready",),
    ),
    Case(
        "rename to an empty title",
        "post",
        "/chat/{conv}/rename/",
        data={"title": "   "},
        status=(400,),
        says=("cannot be empty",),
    ),
    Case(
        "choose a model that does not exist",
        "post",
        "/chat/{conv}/model/",
        data={"model": "gpt-4"},
        status=(302,),
        follow=True,
        says=("not available",),
    ),
    Case(
        "regenerate an answer still being written",
        "post",
        "/chat/answers/{streaming}/regenerate/",
        status=(302,),
        follow=True,
        says=("still being written",),
    ),
    # --- XSS payloads in names, questions and model output ------------------------------------------
    Case(
        "XSS in a question is shown as text",
        "post",
        "/chat/{conv}/ask/",
        data={"question": XSS},
        status=(302,),
        follow=True,
    ),
    Case(
        "XSS in a title is shown as text",
        "post",
        "/chat/{conv}/rename/",
        data={"title": XSS},
        status=(302,),
        follow=True,
    ),
    Case(
        "XSS in model output is inert on the conversation page",
        "get",
        "/chat/{conv}/",
        status=(200,),
        says=("ALICE-SECRET",),
    ),
    Case(
        "XSS in model output is inert in the answer fragment",
        "get",
        "/chat/answers/{answer}/",
        status=(200,),
    ),
    Case(
        "hostile citations are inert on the conversation page",
        "get",
        "/chat/{cited}/",
        status=(200,),
        says=('data-role="citation"', 'data-verified="true"', "not found in the document", "1 of 6 verified"),
    ),
    Case(
        "hostile citations are inert in the answer fragment",
        "get",
        "/chat/answers/{cited_answer}/",
        status=(200,),
        says=('data-verified="false"', "unknown document"),
    ),
    Case(
        "hostile citations become footnotes in the export",
        "get",
        "/chat/{cited}/export/",
        status=(200,),
        # Markdown, not HTML: the answer's own text is exported as written.
        inert=False,
        says=("[^1]: alice-notes.txt:", "(not found in the document)"),
    ),
    Case(
        "a hostile half-written marker is held back in the live render",
        "get",
        "/chat/answers/{cited_streaming}/stream/?html=1",
        status=(200,),
        says=("event: render", 'data-role="citation"'),
        never=("half-written",),
    ),
    Case(
        "a marked passage with HTML is inert on the document page",
        "get",
        "/documents/{doc}/?mark=0-60",
        status=(200,),
        says=('<mark id="cite"',),
    ),
    Case("XSS file name is inert on the list", "get", "/documents/", status=(200,)),
    # --- issue 11: one install, many users ------------------------------------------------------------
    Case(
        "upload a name with a 250-character extension",
        "post",
        "/documents/upload/",
        xhr=True,
        files=(("a." + "x" * 250, b"long extension"),),
        status=(400,),
        says=("files are not supported",),
    ),
    Case(
        "start a chat with a 40-digit document id",
        "post",
        "/chat/new/",
        data={"documents": ["1" * 40]},
        status=(400,),
        says=("is not a valid document id",),
    ),
    Case(
        "listen to document events with a malformed Last-Event-ID",
        "get",
        "/documents/events/",
        headers={"HTTP_LAST_EVENT_ID": "not-an-id; DROP"},
        status=(200,),
        says=("retry:",),
    ),
    Case(
        "retry with an off-site next",
        "post",
        "/documents/{pending}/retry/",
        data={"next": "https://evil.example/"},
        status=(302,),
        location="/documents/",
    ),
    Case(
        "retry with a scheme-relative next",
        "post",
        "/documents/{pending}/retry/",
        data={"next": "//evil.example/x"},
        status=(302,),
        location="/documents/",
    ),
    Case(
        "upload past the per-user document limit",
        "post",
        "/documents/upload/",
        xhr=True,
        files=(("one-more.txt", b"one more"),),
        settings={"DOCQA_USER_MAX_FILES": 3},
        status=(400,),
        says=("already have 3 documents",),
    ),
    Case(
        "upload past the per-user byte limit",
        "post",
        "/documents/upload/",
        xhr=True,
        files=(("big.txt", b"x" * 4096),),
        settings={"DOCQA_USER_MAX_BYTES": 1024},
        status=(400,),
        says=("the most one user may keep",),
    ),
    Case(
        "upload faster than the per-minute limit",
        "post",
        "/documents/upload/",
        xhr=True,
        files=(("first.txt", b"first"), ("second.txt", b"second")),
        settings={"DOCQA_USER_UPLOADS_PER_MINUTE": 1},
        status=(200,),
        says=("faster than 1 files a minute",),
    ),
    Case(
        "mallory uploads bytes alice has: nothing says so",
        "post",
        "/documents/upload/",
        who="mallory",
        xhr=True,
        files=(("guess.txt", b"ALICE-BYTES"),),
        status=(200,),
        says=("Queued",),
        never=("Ready", "already uploaded"),
    ),
    Case("XSS in a document's text is inert on its page", "get", "/documents/{doc}/", status=(200,)),
]
