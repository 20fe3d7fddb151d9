"""HTTP hardening that no library provides as we need it."""

from __future__ import annotations

from django.utils.cache import add_never_cache_headers
from django.utils.deprecation import MiddlewareMixin


class NoStoreForSignedInMiddleware(MiddlewareMixin):
    """`Cache-Control: no-store` on every answer to a signed-in user.

    Their pages hold their documents and conversations: a shared computer's browser cache,
    or a proxy, must not keep them. Static files (served by WhiteNoise before this runs) and
    anonymous pages are unaffected. (MiddlewareMixin: it runs in async views' chains too.)
    """

    def process_response(self, request, response):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            add_never_cache_headers(response)  # no-cache, no-store, must-revalidate, private
        return response
