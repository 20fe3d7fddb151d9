"""The admin's notice when the configured default model is not in the account's `/v1/models`."""

from __future__ import annotations

from django import template
from django.conf import settings

from docqa.chat.catalogue import default_model_replaced

register = template.Library()


@register.simple_tag
def default_model_notice() -> dict:
    """{"configured", "used"} while MOONSHOT_MODEL is replaced by a stand-in, else {}."""
    used = default_model_replaced()
    return {"configured": settings.MOONSHOT_MODEL, "used": used} if used else {}
