"""The dashboard, its polled card and the Training page cost the same whatever the history holds:
the active list is bounded (the first few, counts of all, "N more") and each list is one query."""

from __future__ import annotations

from datetime import timedelta
from itertools import count

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tasks.models import Task
from training.models import SessionStatus, TrainingSession
from training.queries import ACTIVE_LISTED

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

PAGES = ("dashboard", "training:dashboard_card", "training:sessions")
numbers = count()


def add_sessions(owner, status: str, how_many: int) -> None:
    """`how_many` sessions of `status`, each of its own task (a task has one active session at most)."""
    tasks = Task.objects.bulk_create(
        Task(name=f"t{next(numbers)}", robot="PointMass", backend="embedded", root_skill="s", source_path="/x")
        for _ in range(how_many)
    )
    now = timezone.now()
    TrainingSession.objects.bulk_create(
        TrainingSession(task=task, owner=owner, backend="embedded", status=status, created_at=now - timedelta(minutes=i),
                        finished_at=now if status in SessionStatus.terminal() else None)
        for i, task in enumerate(tasks)
    )


def cost(client) -> dict[str, tuple[int, int]]:
    """Queries and bytes of each page."""
    costs = {}
    for name in PAGES:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse(name))
        assert response.status_code == 200
        costs[name] = (len(queries.captured_queries), len(response.content))
    return costs


def test_pages_cost_the_same_queries_with_nine_or_sixty_nine_active_sessions(researcher_client, researcher):
    add_sessions(researcher, SessionStatus.RUNNING, 2)
    add_sessions(researcher, SessionStatus.QUEUED, ACTIVE_LISTED - 1)  # one more than the card lists
    add_sessions(researcher, SessionStatus.COMPLETED, 3)
    cost(researcher_client)  # caches (content types, the session row) warm
    few = cost(researcher_client)

    add_sessions(researcher, SessionStatus.QUEUED, 60)
    add_sessions(researcher, SessionStatus.COMPLETED, 60)
    many = cost(researcher_client)

    assert {name: q for name, (q, _) in many.items()} == {name: q for name, (q, _) in few.items()}
    # What is shown is bounded too: the card grows by its "N more" line, not by sixty rows.
    assert many["training:dashboard_card"][1] < few["training:dashboard_card"][1] * 2
    card = researcher_client.get(reverse("training:dashboard_card") + "?stat=1").content.decode()
    assert card.count('class="session-item status-queued"') + card.count('class="session-item status-running"') == ACTIVE_LISTED
    assert f'data-active-more="{69 - ACTIVE_LISTED}"' in card
    assert '<span id="stat-training" class="stat-value" hx-swap-oob="true">69</span>' in card
    # Sessions at work come first, whatever their age.
    assert card.count('class="session-item status-running"') == 2
    assert card.index("status-running") < card.index("status-queued")
