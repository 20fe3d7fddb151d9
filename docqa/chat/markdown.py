"""Model output to safe HTML: markdown-it-py with raw HTML off, then nh3 with a small allow-list.

Nothing the model writes is trusted: a document can carry instructions that make the model
write `<script>`, `javascript:` links or an image whose URL leaks the conversation. Raw HTML
is escaped by the parser; nh3 then keeps only the tags below, only http(s)/mailto links, and
no images at all.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

_md = MarkdownIt("js-default")

ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "strong",
    "em",
    "s",
    "del",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "span",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"style"}, "td": {"style"}}


def markdown_render(text: str) -> str:
    """Sanitised HTML for a model's Markdown (safe to mark safe in a template)."""
    if not text:
        return ""
    html = _md.render(text)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener nofollow",
        filter_style_properties={"text-align"},
        strip_comments=True,
    )
