"""ASGI entry point, served by uvicorn."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "docqa.settings")

django_application = get_asgi_application()

from django.conf import settings  # noqa: E402

from docqa.documents.asgi import upload_size_guard  # noqa: E402  (needs settings loaded)
from docqa.request_limit import request_limit  # noqa: E402

application = upload_size_guard(request_limit(django_application, settings.DOCQA_WEB_REQUESTS_AT_ONCE))
