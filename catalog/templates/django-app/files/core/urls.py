from django.urls import path

from core import views

app_name = "core"

urlpatterns = [
    path("", views.note_list, name="note_list"),
    path("notes/<int:pk>/toggle/", views.note_toggle, name="note_toggle"),
    path("notes/<int:pk>/delete/", views.note_delete, name="note_delete"),
    path("health/", views.health, name="health"),
]
