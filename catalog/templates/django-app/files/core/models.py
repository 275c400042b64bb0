from django.db import models


class Note(models.Model):
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    done = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["done", "-created_at"]
        indexes = [models.Index(fields=["done", "-created_at"], name="note_done_created_idx")]

    def __str__(self) -> str:
        return self.title
