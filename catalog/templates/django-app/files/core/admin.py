from django.contrib import admin

from core.models import Note


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):
    list_display = ["title", "done", "created_at", "updated_at"]
    list_filter = ["done"]
    search_fields = ["title", "body"]
