from django.urls import path

from docqa.documents import views

app_name = "documents"
urlpatterns = [
    path("", views.document_list, name="list"),
    path("upload/", views.document_upload, name="upload"),
    path("events/", views.document_events, name="events"),
    path("<int:pk>/", views.document_detail, name="detail"),
    path("<int:pk>/row/", views.document_row, name="row"),
    path("<int:pk>/retry/", views.document_retry, name="retry"),
    path("<int:pk>/delete/", views.document_delete, name="delete"),
]
