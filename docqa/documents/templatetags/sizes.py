"""File sizes in decimal units, as Moonshot states its limits (100 MB = 100,000,000 bytes).

Django's `filesizeformat` divides by 1024 yet says "MB", so a file of 100,000,000 bytes would
show as 95.4 MB against a limit Moonshot calls 100 MB.
"""

from __future__ import annotations

from django import template
from django.utils.formats import number_format
from django.utils.translation import gettext as _

register = template.Library()

_UNITS = ((10**12, "TB"), (10**9, "GB"), (10**6, "MB"), (10**3, "KB"))


def size_decimal(size: int | None) -> str:
    """`size` bytes as "1.5 MB" (powers of 1000)."""
    try:
        size = int(size or 0)
    except (TypeError, ValueError):
        size = 0
    for factor, unit in _UNITS:
        if size >= factor:
            return f"{number_format(round(size / factor, 1), decimal_pos=1)} {unit}"
    return _("%(size)s bytes") % {"size": size}


register.filter("size_decimal", size_decimal)
