from django.urls import path

from docqa.chat import views, views_stream

app_name = "chat"
urlpatterns = [
    path("", views.conversation_list, name="list"),
    path("new/", views.conversation_new, name="new"),
    path("<int:pk>/", views.conversation_detail, name="detail"),
    path("<int:pk>/ask/", views.conversation_ask, name="ask"),
    path("<int:pk>/model/", views.conversation_model, name="model"),
    path("<int:pk>/thinking/", views.conversation_thinking, name="thinking"),
    path("<int:pk>/rename/", views.conversation_rename, name="rename"),
    path("<int:pk>/delete/", views.conversation_delete, name="delete"),
    path("<int:pk>/export/", views.conversation_export, name="export"),
    path("answers/<int:pk>/", views.answer_detail, name="answer"),
    path("answers/<int:pk>/stream/", views_stream.answer_stream, name="answer_stream"),
    path("answers/<int:pk>/stop/", views.answer_stop, name="answer_stop"),
    path("answers/<int:pk>/continue/", views.answer_continue, name="answer_continue"),
    path("answers/<int:pk>/regenerate/", views.answer_regenerate, name="answer_regenerate"),
]
