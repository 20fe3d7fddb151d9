"""Project-wide views."""

from django.shortcuts import render


def csrf_failure(request, reason: str = ""):
    """A refused form in plain words (Django's default page is for developers)."""
    return render(request, "403_csrf.html", status=403)
