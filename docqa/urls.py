from django.contrib import admin
from django.shortcuts import redirect
from django.urls import include, path

urlpatterns = [
    path("", lambda request: redirect("documents:list"), name="home"),
    path("accounts/", include("docqa.accounts.urls")),
    path("documents/", include("docqa.documents.urls")),
    path("chat/", include("docqa.chat.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
