from django.contrib import admin
from django.shortcuts import redirect
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

# The admin says docqa, not "Django administration".
admin.site.site_header = _("docqa administration")
admin.site.site_title = _("docqa admin")
admin.site.index_title = _("docqa")

urlpatterns = [
    path("", lambda request: redirect("documents:list"), name="home"),
    path("accounts/", include("docqa.accounts.urls")),
    path("documents/", include("docqa.documents.urls")),
    path("chat/", include("docqa.chat.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
