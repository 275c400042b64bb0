from django import forms

from core.models import Note


class NoteForm(forms.ModelForm):
    class Meta:
        model = Note
        fields = ["title", "body"]
        widgets = {
            "title": forms.TextInput(attrs={"placeholder": "Title", "autofocus": True}),
            "body": forms.Textarea(attrs={"placeholder": "Details (optional)", "rows": 3}),
        }
