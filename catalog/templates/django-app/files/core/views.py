from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.forms import NoteForm
from core.models import Note


@require_http_methods(["GET", "POST"])
def note_list(request: HttpRequest) -> HttpResponse:
    """The home page: the notes, and a form that adds one."""
    if request.method == "POST":
        form = NoteForm(request.POST)
        if form.is_valid():
            form.save()
            return redirect("core:note_list")
    else:
        form = NoteForm()
    notes = Note.objects.all()
    return render(request, "core/note_list.html", {"notes": notes, "form": form})


@require_POST
def note_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    note = get_object_or_404(Note, pk=pk)
    note.done = not note.done
    note.save(update_fields=["done", "updated_at"])
    return redirect("core:note_list")


@require_POST
def note_delete(request: HttpRequest, pk: int) -> HttpResponse:
    get_object_or_404(Note, pk=pk).delete()
    return redirect("core:note_list")


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Liveness and database check for load balancers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = "ok"
    except Exception:  # noqa: BLE001 - any database failure means unhealthy
        database = "unavailable"
    status = 200 if database == "ok" else 503
    return JsonResponse({"status": "ok" if status == 200 else "degraded", "database": database}, status=status)
