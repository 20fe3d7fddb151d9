"""Every template of the project compiles, once, when a web process starts."""

from __future__ import annotations

from django.template import engines

from docqa.templates_warm import templates_warm


def _cached_loaders():
    pending = list(engines["django"].engine.template_loaders)
    while pending:
        loader = pending.pop()
        if hasattr(loader, "get_template_cache"):
            yield loader
        pending.extend(getattr(loader, "loaders", []))


def _cached_names() -> set[str]:
    return {key for loader in _cached_loaders() for key in loader.get_template_cache}


def test_the_warm_up_compiles_every_project_template_into_the_cache():
    for loader in _cached_loaders():
        loader.reset()
    assert "chat/conversation.html" not in _cached_names()
    count = templates_warm()
    assert count > 20
    assert {"chat/conversation.html", "base.html", "documents/list.html"} <= _cached_names()
