from django.test import TestCase
from django.urls import reverse

from core.models import Note


class NoteViewsTests(TestCase):
    def test_home_page_lists_notes(self) -> None:
        Note.objects.create(title="Buy milk")
        response = self.client.get(reverse("core:note_list"))
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Buy milk")

    def test_post_creates_a_note_and_redirects(self) -> None:
        response = self.client.post(reverse("core:note_list"), {"title": "Write tests", "body": ""})
        self.assertRedirects(response, reverse("core:note_list"))
        self.assertTrue(Note.objects.filter(title="Write tests").exists())

    def test_invalid_post_shows_errors_and_saves_nothing(self) -> None:
        response = self.client.post(reverse("core:note_list"), {"title": ""})
        self.assertEqual(response.status_code, 200)
        self.assertEqual(Note.objects.count(), 0)

    def test_toggle_and_delete(self) -> None:
        note = Note.objects.create(title="Ship it")
        self.client.post(reverse("core:note_toggle", args=[note.pk]))
        note.refresh_from_db()
        self.assertTrue(note.done)
        self.client.post(reverse("core:note_delete", args=[note.pk]))
        self.assertFalse(Note.objects.filter(pk=note.pk).exists())

    def test_toggle_needs_post(self) -> None:
        note = Note.objects.create(title="Safe")
        response = self.client.get(reverse("core:note_toggle", args=[note.pk]))
        self.assertEqual(response.status_code, 405)

    def test_health(self) -> None:
        response = self.client.get(reverse("core:health"))
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["database"], "ok")
