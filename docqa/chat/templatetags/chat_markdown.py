from django import template
from django.utils.safestring import mark_safe

from docqa.chat.answers import answer_display_html, answer_summary
from docqa.chat.markdown import markdown_render

register = template.Library()


@register.filter
def markdown(text: str) -> str:
    """Model output as sanitised HTML (see docqa.chat.markdown)."""
    return mark_safe(markdown_render(text or ""))  # noqa: S308 - nh3 has sanitised it


@register.simple_tag
def answer_body(answer, documents, final: bool = True) -> str:
    """An answer's sanitised HTML with its citations (see docqa.chat.answers)."""
    html = answer_display_html(answer.content or "", answer.citations, documents or (), final=final)
    return mark_safe(html)  # noqa: S308 - nh3 has sanitised it; citation values are escaped


@register.filter
def citations_count(answer) -> str:
    return answer_summary(answer.citations)
