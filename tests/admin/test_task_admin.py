"""The Django admin for tasks and skills loads, filters and searches."""

from __future__ import annotations

import pytest

from tasks.models import Skill

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_task_admin_pages_load(admin_user_client, doorway_task):
    assert admin_user_client.get("/admin/").status_code == 200
    response = admin_user_client.get("/admin/tasks/task/")
    assert response.status_code == 200 and "doorway_and_goal" in response.content.decode()
    for query in ("?robot__exact=G1", "?backend__exact=isaaclab", "?levels__exact=3", "?q=doorway"):
        response = admin_user_client.get("/admin/tasks/task/" + query)
        assert response.status_code == 200 and "doorway_and_goal" in response.content.decode(), query
    response = admin_user_client.get(f"/admin/tasks/task/{doorway_task.pk}/change/")
    assert response.status_code == 200
    assert "Walk_to_Small_Block" in response.content.decode()  # skills inline


def test_skill_admin_pages_load(admin_user_client, doorway_task):
    response = admin_user_client.get("/admin/tasks/skill/")
    body = response.content.decode()
    assert response.status_code == 200 and "Walk_to_Small_Block" in body and "walk_to_Small_Block" in body
    for query in ("?is_primitive__exact=0", "?level__exact=2", "?defined__exact=0", "?task__robot=G1", "?q=door"):
        assert admin_user_client.get("/admin/tasks/skill/" + query).status_code == 200, query
    skill = Skill.objects.get(task=doorway_task, name="open_door")
    assert admin_user_client.get(f"/admin/tasks/skill/{skill.pk}/change/").status_code == 200


def test_skill_changelist_query_count_is_flat(admin_user_client, doorway_task, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        admin_user_client.get("/admin/tasks/skill/")


def test_plain_user_cannot_use_admin(user_client):
    response = user_client.get("/admin/tasks/task/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
