"""ASGI entry point, served by uvicorn."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "docqa.settings")

django_application = get_asgi_application()

from docqa.documents.asgi import upload_size_guard  # noqa: E402  (needs settings loaded)

application = upload_size_guard(django_application)
