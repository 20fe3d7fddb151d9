"""docqa: ask questions about documents with Moonshot AI's Kimi models."""

from docqa.celery import app as celery_app

__all__ = ["celery_app"]
