"""The history's filters and sort (the training page's query string), validated like any form."""

from __future__ import annotations

from typing import Any

from django import forms

from tasks.models import Task
from training.comparison import SORTS, HistoryFilter
from training.models import SessionStatus

SORT_LABELS = {
    "newest": "newest first", "oldest": "oldest first", "finished": "recently finished",
    "task": "task", "status": "status", "owner": "owner",
}


class HistoryForm(forms.Form):
    task = forms.CharField(required=False, max_length=200)
    robot = forms.CharField(required=False, max_length=200)
    owner = forms.CharField(required=False, max_length=150)
    status = forms.ChoiceField(required=False, choices=[("", "any status"), *SessionStatus.choices])
    backend = forms.ChoiceField(required=False, choices=[("", "any backend"), *Task.Backend.choices])
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    sort = forms.ChoiceField(required=False, choices=[(key, SORT_LABELS[key]) for key in SORTS])
    page = forms.IntegerField(required=False, min_value=1, max_value=1_000_000)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "must not be before “since”")
        return data

    def history_filter(self) -> HistoryFilter:
        data = self.cleaned_data
        return HistoryFilter(
            task=data["task"].strip(), robot=data["robot"].strip(), owner=data["owner"].strip(),
            status=data["status"], backend=data["backend"], since=data["since"], until=data["until"],
            sort=data["sort"] or "newest",
        )

    def query_without_page(self) -> str:
        """The filters as a query string, for the pager's links."""
        from urllib.parse import urlencode

        data = self.cleaned_data if self.is_valid() else {}
        pairs = {k: v for k, v in data.items() if k != "page" and v not in (None, "")}
        return urlencode({k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in pairs.items()})
