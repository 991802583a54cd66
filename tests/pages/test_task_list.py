"""The task list: search, robot filter, sort, pagination, htmx partials, and its cost at 1,000 tasks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tasks.models import Task
from tasks.views import TASKS_PER_PAGE
from tests.factories import make_task

pytestmark = pytest.mark.django_db
URL = reverse("task_list")


@pytest.fixture
def three_tasks() -> list[Task]:
    tasks = [
        make_task("stack_blocks", "G1", description="Stack three cubes into a tower."),
        make_task("open_drawer", "Franka", description="Pull the drawer handle until the drawer is open."),
        make_task("Kick_Ball", "G1", description="Walk to the red ball and kick it."),
    ]
    # Imported one day apart, oldest first, whatever the clock resolution.
    now = timezone.now()
    for days, task in zip((3, 2, 1), tasks, strict=True):
        Task.objects.filter(pk=task.pk).update(imported_at=now - timedelta(days=days))
    return tasks


def names(response) -> list[str]:
    return [task.name for task in response.context["tasks"]]


def test_lists_every_task_newest_first(user_client, three_tasks):
    response = user_client.get(URL)
    assert response.status_code == 200
    assert names(response) == ["Kick_Ball", "open_drawer", "stack_blocks"]
    body = response.content.decode()
    assert "Showing 1–3 of 3 tasks" in body
    assert 'href="/tasks/G1/Kick_Ball/"' in body


def test_card_shows_robot_skills_levels_date_and_backend(user_client):
    make_task("walk", "H1", skill_count=12, levels=3, backend=Task.Backend.EMBEDDED, warnings=["w1", "w2"])
    body = user_client.get(URL).content.decode()
    assert "H1" in body and "<dd>12</dd>" in body and "<dd>3</dd>" in body
    assert "Embedded" in body and "2 import warnings" in body
    assert timezone.now().strftime("%Y") in body


def test_search_matches_name_or_description_case_insensitively(user_client, three_tasks):
    assert names(user_client.get(URL, {"q": "kick"})) == ["Kick_Ball"]
    assert names(user_client.get(URL, {"q": "DRAWER"})) == ["open_drawer"]
    assert names(user_client.get(URL, {"q": "cubes tower"})) == ["stack_blocks"]  # every word must match
    response = user_client.get(URL, {"q": "nothing-like-this"})
    assert names(response) == []
    assert "No task matches these filters." in response.content.decode()


def test_filter_by_robot(user_client, three_tasks):
    response = user_client.get(URL, {"robot": "G1"})
    assert names(response) == ["Kick_Ball", "stack_blocks"]
    body = response.content.decode()
    assert '<option value="Franka">Franka</option>' in body
    assert '<option value="G1" selected>G1</option>' in body


def test_sort_oldest_and_by_name(user_client, three_tasks):
    assert names(user_client.get(URL, {"sort": "oldest"})) == ["stack_blocks", "open_drawer", "Kick_Ball"]
    assert names(user_client.get(URL, {"sort": "name"})) == ["Kick_Ball", "open_drawer", "stack_blocks"]


def test_search_filter_and_sort_combine(user_client, three_tasks):
    response = user_client.get(URL, {"q": "a", "robot": "G1", "sort": "name"})
    assert names(response) == ["Kick_Ball", "stack_blocks"]


@pytest.mark.parametrize(
    ("query", "bad_field"),
    [
        ({"sort": "sideways"}, "sort"),
        ({"robot": "R2D2"}, "robot"),
        ({"page": "x"}, "page"),
        ({"page": "0"}, "page"),
        ({"page": "-3"}, "page"),
        ({"page": "99999999999999999999"}, "page"),
        ({"q": "x" * 500}, "q"),
    ],
)
def test_invalid_query_values_fall_back_to_defaults_with_a_notice(user_client, three_tasks, query, bad_field):
    response = user_client.get(URL, query)
    assert response.status_code == 200
    assert bad_field in response.context["form"].errors
    assert names(response) == ["Kick_Ball", "open_drawer", "stack_blocks"]
    assert f"Ignored <code>{bad_field}</code>" in response.content.decode()


def test_repeated_and_odd_parameters_never_fail(user_client, three_tasks):
    for query in ("?sort=name&sort=oldest", "?robot=&q=", "?q=%00", "?page=2.5", "?unknown=1", "?q=%25_"):
        assert user_client.get(URL + query).status_code == 200, query


def test_paginates_24_per_page_and_keeps_filters_in_page_links(user_client):
    Task.objects.bulk_create(
        Task(name=f"task_{i:02}", robot="G1", root_skill="r", source_path="/x") for i in range(30)
    )
    first = user_client.get(URL, {"sort": "name", "robot": "G1"})
    assert len(first.context["tasks"]) == TASKS_PER_PAGE
    body = first.content.decode()
    assert "Page 1 of 2" in body
    next_link = "/tasks/?sort=name&amp;robot=G1&amp;page=2"
    assert f'href="{next_link}"' in body and f'hx-get="{next_link}"' in body

    second = user_client.get(URL, {"sort": "name", "robot": "G1", "page": 2})
    assert names(second) == [f"task_{i:02}" for i in range(24, 30)]
    # A page past the end shows the last page rather than an error.
    assert names(user_client.get(URL, {"sort": "name", "page": 50})) == names(second)


def test_htmx_request_gets_only_the_results_partial(user_client, three_tasks):
    response = user_client.get(URL, {"q": "kick"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert [t.name for t in response.templates][:1] == ["tasks/_task_results.html"]
    body = response.content.decode()
    assert "<html" not in body and "Kick_Ball" in body and "open_drawer" not in body
    assert "HX-Request" in response["Vary"]


def test_htmx_history_restore_gets_the_full_page(user_client, three_tasks):
    headers = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    response = user_client.get(URL, headers=headers)
    assert "<html" in response.content.decode()


def test_full_page_form_works_without_javascript(user_client, three_tasks):
    body = user_client.get(URL).content.decode()
    assert 'method="get" action="/tasks/"' in body
    assert 'hx-get="/tasks/"' in body and 'hx-push-url="true"' in body and 'hx-target="#task-results"' in body


def test_thousand_tasks_render_with_a_bounded_number_of_queries(user_client, django_assert_max_num_queries):
    Task.objects.bulk_create(
        Task(
            name=f"task_{i:04}",
            robot=f"robot_{i % 7}",
            root_skill="root",
            source_path=f"/lab/task_{i}",
            description=f"Task number {i} of the benchmark",
            hierarchy={"name": "root", "children": [{"name": f"child_{j}"} for j in range(50)]},
            skill_count=i % 40,
            levels=1 + i % 3,
        )
        for i in range(1000)
    )
    # session + user + permissions + navigation's training count + robot choices + count + page
    # rows: the same for 10 or 1,000 tasks.
    with django_assert_max_num_queries(8):
        response = user_client.get(URL, {"q": "benchmark", "sort": "name", "page": 3})
    assert response.status_code == 200
    assert len(response.context["tasks"]) == TASKS_PER_PAGE
    assert "Showing 49–72 of 1,000 tasks" in response.content.decode()
    with django_assert_max_num_queries(7):  # the htmx partial: no navigation count
        user_client.get(URL, {"robot": "robot_3"}, headers={"HX-Request": "true"})
