"""ASGI entry point, served by uvicorn."""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "docqa.settings")
django.setup(set_prefix=False)  # as django.core.asgi.get_asgi_application() does

from django.conf import settings  # noqa: E402

from docqa.handlers import SyncChainASGIHandler  # noqa: E402  (needs apps loaded)

# A request holds a thread only while inside Django, and `request_limit` lets that many in.
django_application = SyncChainASGIHandler(threads=settings.DOCQA_WEB_REQUESTS_AT_ONCE or 64)

from docqa.bodylimit import body_limit  # noqa: E402  (needs settings loaded)
from docqa.ops.asgi import operations  # noqa: E402
from docqa.ops.logs import uvicorn_loggers_adopt  # noqa: E402
from docqa.ops.metrics import metrics_server_start  # noqa: E402
from docqa.request_limit import request_limit  # noqa: E402

# Health endpoints, request ids and request metrics wrap everything else; every body is
# bounded before Django reads it.
application = operations(body_limit(request_limit(django_application, settings.DOCQA_WEB_REQUESTS_AT_ONCE)))

from docqa.templates_warm import templates_warm  # noqa: E402

templates_warm()  # before the first request, not in each of its threads at once

if settings.DOCQA_LOG_FORMAT == "json":
    uvicorn_loggers_adopt()  # one JSON object per line, uvicorn's lines included
if settings.DOCQA_METRICS_PORT:
    metrics_server_start(port=settings.DOCQA_METRICS_PORT, host=settings.DOCQA_METRICS_HOST)
