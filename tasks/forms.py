"""Forms of the task pages. Query strings go through forms too, so a bad value is a message, never a 500."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django import forms
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower

from tasks.models import Task

# sort key → (label, ORDER BY); the last columns make the order total, so pages never overlap.
SORTS: dict[str, tuple[str, tuple[object, ...]]] = {
    "newest": ("Newest first", ("-imported_at", "-id")),
    "oldest": ("Oldest first", ("imported_at", "id")),
    "name": ("Name (A–Z)", (Lower("name"), "name", "robot")),
}
DEFAULT_SORT = "newest"
MAX_SEARCH_TERMS = 8


@dataclass(frozen=True)
class TaskFilters:
    """The task list's filters after validation: invalid inputs are replaced by their defaults."""

    q: str = ""
    robot: str = ""
    sort: str = DEFAULT_SORT
    page: int = 1

    def apply(self, tasks: QuerySet[Task]) -> QuerySet[Task]:
        # Every word must appear, in the name or in the description.
        for term in self.q.split()[:MAX_SEARCH_TERMS]:
            tasks = tasks.filter(Q(name__icontains=term) | Q(description__icontains=term))
        if self.robot:
            tasks = tasks.filter(robot=self.robot)
        return tasks.order_by(*SORTS[self.sort][1])

    @property
    def active(self) -> bool:
        return bool(self.q or self.robot)


class TaskFilterForm(forms.Form):
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "Search names and descriptions…", "autocomplete": "off"}
        ),
    )
    robot = forms.ChoiceField(required=False, label="Robot")
    sort = forms.ChoiceField(
        required=False, label="Sort", choices=[(key, label) for key, (label, _) in SORTS.items()]
    )
    page = forms.IntegerField(required=False, min_value=1, max_value=1_000_000, widget=forms.HiddenInput)

    def __init__(self, data: object = None, *, robots: Iterable[str] = ()) -> None:
        super().__init__(data)  # type: ignore[arg-type]
        self.fields["robot"].choices = [("", "All robots"), *((r, r) for r in robots)]

    def filters(self) -> TaskFilters:
        """The validated filters; a field that failed validation falls back to its default."""
        self.is_valid()
        data = self.cleaned_data
        defaults = TaskFilters()
        return TaskFilters(
            q=data.get("q") or defaults.q,
            robot=data.get("robot") or defaults.robot,
            sort=data.get("sort") or defaults.sort,
            page=data.get("page") or defaults.page,
        )
