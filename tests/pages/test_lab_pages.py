"""The lab pages: sweeps (new, ranked, compared, cancelled), the queue with its staff controls,
notification settings, workers, and the links to them; who may do what."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import TINY, one_skill_task
from training import lab_views, queueing, services, sweeps
from training.lab_models import NotificationSettings, SessionLimit, Sweep
from training.models import SessionStatus, SkillRun, SkillStatus, TrainingSession

pytestmark = [pytest.mark.django_db]


def sweep_form(task, **changes) -> dict[str, str]:
    data = {"task": str(task.pk), "name": "lr", "method": "grid", "metric": "success_rate", "seeds": "1, 2",
            "max_time": "1", "p_learning_rate": "1e-3, 3e-3"}
    data.update(changes)
    return data


def test_navigation_links_the_lab_pages(researcher_client):
    body = researcher_client.get(reverse("dashboard")).content.decode()
    for name in ("queue", "sweeps", "workers", "presets", "notifications"):
        assert f'href="{reverse(f"training:{name}")}"' in body, name


def test_a_sweep_is_planned_from_the_form_and_shown_ranked(researcher_client, researcher, fetch_block):
    response = researcher_client.post(reverse("training:sweep_new"), sweep_form(fetch_block))

    sweep = Sweep.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("training:sweep", args=[sweep.pk])
    assert (sweep.owner, sweep.seeds, sweep.space) == (researcher, [1, 2], {"learning_rate": {"values": [1e-3, 3e-3]}})
    assert sweep.base["max_time"] == 1.0
    first = sweep.trials.get(number=0).session
    first.transition_to(SessionStatus.RUNNING, actor="t", worker_id="w")
    SkillRun.objects.create(session=first, skill=fetch_block.skills.get(name="fetch_block"), order=2,
                            success_rate=0.8, status=SkillStatus.COMPLETED, started_at=first.started_at)
    first.transition_to(SessionStatus.COMPLETED, actor="t")

    body = researcher_client.get(reverse("training:sweep", args=[sweep.pk])).content.decode()
    assert 'data-setting="0" data-rank="1"' in body and "learning_rate=0.001" in body
    assert f'href="/training/sessions/{first.pk}/"' in body
    assert 'hx-trigger="every 5s"' in body  # live while it runs

    compare = researcher_client.get(reverse("training:sweep_compare", args=[sweep.pk]), {"trial": ["0", "1"]})
    assert compare.status_code == 200
    assert "Trial 0" in compare.content.decode() and "Trial 1" in compare.content.decode()
    assert 'title="learning_rate">Learning rate <code' in compare.content.decode()  # the form's label, and the name


def test_the_sweep_form_shows_what_does_not_validate(researcher_client, fetch_block):
    response = researcher_client.post(reverse("training:sweep_new"), sweep_form(fetch_block, p_num_envs="8, 64",
                                                                                p_learning_rate=""))
    assert response.status_code == 422
    assert response.context["form"].errors["p_num_envs"] == ["must be between 16 and 8192"]
    response = researcher_client.post(reverse("training:sweep_new"), sweep_form(fetch_block, p_learning_rate="1..2"))
    assert response.context["form"].errors["p_learning_rate"] == ["a grid needs a list of values, not a range"]
    assert not Sweep.objects.exists()


def test_starting_a_sweep_needs_the_start_permission(user_client, fetch_block):
    assert user_client.post(reverse("training:sweep_new"), sweep_form(fetch_block)).status_code == 403
    assert not TrainingSession.objects.exists()


def test_only_the_owner_or_staff_cancel_a_sweep(client, researcher, other_user, staff_user, fetch_block):
    sweep = sweeps.create(fetch_block, owner=researcher, method="grid", space={"mini_epochs": [2]}, seeds=[1], base=TINY)
    client.force_login(other_user)
    assert client.post(reverse("training:sweep_cancel", args=[sweep.pk])).status_code == 403
    client.force_login(staff_user)
    assert client.post(reverse("training:sweep_cancel", args=[sweep.pk])).status_code == 302
    sweep.refresh_from_db()
    assert sweep.status == Sweep.Status.CANCELLED


def test_the_queue_page_shows_claim_order_and_only_staff_move_and_limit(client, researcher, staff_user, user,
                                                                      monkeypatch):
    first = services.start_session(one_skill_task("t1"), TINY, owner=researcher)
    second = services.start_session(one_skill_task("t2"), TINY, owner=researcher)
    queueing.set_limit(researcher, 1, actor="test")
    client.force_login(user)
    body = client.get(reverse("training:queue")).content.decode()
    assert f'data-session="{first.pk}" data-position="1"' in body
    assert f'data-session="{second.pk}" data-position=""' in body and "held" in body
    assert "Move up" not in body and "Session limits" not in body
    assert "Nothing at work in this queue now." in body
    # What the first in line waits behind: the sessions at work, with who started them.
    working = services.start_session(one_skill_task("t3"), TINY)
    working.transition_to(SessionStatus.RUNNING, actor="test", worker_id="w")
    body = client.get(reverse("training:queue")).content.decode()
    assert f'At work now: <a href="/training/sessions/{working.pk}/">#{working.pk}</a> <span class="mono">t3</span> (terminal)' in body
    # The page lists the front of each queue, and counts the rest.
    monkeypatch.setattr(lab_views, "QUEUE_PAGE_ROWS", 1)
    body = client.get(reverse("training:queue")).content.decode()
    assert f'data-session="{first.pk}"' in body and f'data-session="{second.pk}"' not in body
    assert "2 waiting" in body and "and 1 more behind these" in body
    monkeypatch.undo()
    assert client.post(reverse("training:queue_move", args=[second.pk]), {"to": "top"}).status_code == 403
    assert client.post(reverse("training:queue_limit"), {"max_running": "5"}).status_code == 403

    client.force_login(staff_user)
    response = client.post(reverse("training:queue_move", args=[second.pk]), {"to": "top"},
                           headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert [p.session_id for p in queueing.plan()] == [second.pk, first.pk]
    assert client.post(reverse("training:queue_limit"), {"username": "researcher", "max_running": "3"}).status_code == 302
    assert SessionLimit.objects.get(user=researcher).max_running == 3
    client.post(reverse("training:queue_limit"), {"max_running": "2"})
    assert queueing.default_limit() == 2
    client.post(reverse("training:queue_limit"), {"username": "researcher", "remove": "on"})
    assert not SessionLimit.objects.filter(user=researcher).exists()


def test_queue_api_orders_and_staff_move(client_for, researcher, fetch_block, patrol):
    first = services.start_session(fetch_block, TINY, owner=researcher)
    second = services.start_session(patrol, TINY, owner=researcher)
    staff, headers = client_for("staff")
    other, other_headers = client_for("other")

    data = other.get("/api/queue", headers=other_headers).json()
    assert [(s["session_id"], s["position"]) for s in data["sessions"]] == [(first.pk, 1), (second.pk, 2)]
    assert other.post(f"/api/queue/{second.pk}/move", {"to": "top"}, content_type="application/json",
                      headers=other_headers).status_code == 403
    moved = staff.post(f"/api/queue/{second.pk}/move", {"to": "top"}, content_type="application/json", headers=headers)
    assert [s["session_id"] for s in moved.json()["sessions"]] == [second.pk, first.pk]


def test_sweep_api_creates_reads_and_cancels(token_client, fetch_block):
    body = {"task": "fetch_block", "method": "random", "metric": "frames", "seeds": [1], "budget": 2,
            "space": {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}}, "base": TINY, "random_seed": 5}
    response = token_client.post("/api/sweeps", body, content_type="application/json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["progress"]["planned"] == 2 and data["trials"][0]["status"] == "queued"
    assert token_client.get(f"/api/sweeps/{data['id']}").json()["ranking"][0]["setting"] in (0, 1)
    bad = token_client.post("/api/sweeps", {**body, "space": {"num_envs": [1]}}, content_type="application/json")
    assert bad.status_code == 400 and "num_envs" in bad.json()["errors"]
    cancelled = token_client.post(f"/api/sweeps/{data['id']}/cancel").json()
    assert cancelled["status"] == "cancelled"


def test_notification_settings_are_saved_and_checked(researcher_client, researcher):
    response = researcher_client.post(reverse("training:notifications"),
                                      {"email": "on", "webhook_url": "file:///etc/passwd", "on_failed": "on"})
    assert response.status_code == 422
    assert response.context["form"].errors["webhook_url"] == ["a webhook must be an http:// or https:// URL"]

    researcher_client.post(reverse("training:notifications"),
                           {"email": "on", "webhook_url": "https://hooks.example.org/x", "on_failed": "on"})
    saved = NotificationSettings.objects.get(user=researcher)
    assert (saved.email, saved.webhook_url, saved.on_completed, saved.on_failed) == (
        True, "https://hooks.example.org/x", False, True)


def test_workers_page_says_when_no_worker_has_reported(user_client):
    body = user_client.get(reverse("training:workers")).content.decode()
    assert "No worker has reported yet" in body and 'hx-trigger="every 5s"' in body


def test_the_session_page_loads_its_lab_panel(researcher_client, researcher, fetch_block):
    sweep = sweeps.create(fetch_block, owner=researcher, method="grid", space={"mini_epochs": [2]}, seeds=[4], base=TINY)
    session = sweep.trials.get().session

    page = researcher_client.get(reverse("training:session", args=[session.pk])).content.decode()
    assert f'hx-get="/training/sessions/{session.pk}/lab/"' in page
    panel = researcher_client.get(reverse("training:session_lab", args=[session.pk])).content.decode()
    assert "Trial 0 of sweep" in panel and "seed 4" in panel


def test_pages_hold_no_inline_script(researcher_client, fetch_block):
    """The Content-Security-Policy refuses inline scripts and htmx trigger filters."""
    for name in ("queue", "sweeps", "sweep_new", "workers", "presets", "notifications"):
        body = researcher_client.get(reverse(f"training:{name}")).content.decode()
        assert "<script>" not in body and "onclick" not in body and "[detail" not in body, name
