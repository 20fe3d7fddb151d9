from django import template
from django.utils.safestring import mark_safe

from docqa.chat.markdown import markdown_render

register = template.Library()


@register.filter
def markdown(text: str) -> str:
    """Model output as sanitised HTML (see docqa.chat.markdown)."""
    return mark_safe(markdown_render(text or ""))  # noqa: S308 - nh3 has sanitised it
