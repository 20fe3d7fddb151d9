"""What an answer cost, from the prices an operator configured (DOCQA_MODEL_PRICES)."""

from __future__ import annotations

from django import template
from django.conf import settings

from docqa.chat.catalogue import thinking_switchable

register = template.Library()


@register.simple_tag
def answer_cost(answer) -> str:
    """`≈` cost of an answer's tokens in DOCQA_MODEL_PRICE_CURRENCY, or "" without a price or usage."""
    price = settings.DOCQA_MODEL_PRICES.get(answer.model)
    if price is None or answer.prompt_tokens is None or answer.completion_tokens is None:
        return ""
    cost = price.cost(
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
        cached_tokens=answer.cached_tokens or 0,
    )
    return f"{settings.DOCQA_MODEL_PRICE_CURRENCY}{cost:.4f}"


@register.filter(name="thinking_switchable")
def thinking_switchable_filter(model: str) -> bool:
    return thinking_switchable(model or "")
