"""Training on the other pages: task page, task list (badges, quick train, "Train selected"),
dashboard, the navigation's live indicator, and the Training page."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.factories import WEB_OPTIONS, make_task, run_session
from training.models import SessionStatus, TrainingSession

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


def test_task_page_has_a_working_start_button_and_statuses_in_its_tree(researcher_client, fetch_block):
    body = researcher_client.get(fetch_block.get_absolute_url()).content.decode()
    start = reverse("training:configure", kwargs={"robot": "PointMass", "name": "fetch_block"})
    assert re.search(rf'<a class="btn btn-primary" href="{start}" hx-get="{start}" hx-target="#modal-root"', body)
    assert "disabled" not in body.split('id="training-actions"')[1][:400]
    for skill in fetch_block.skills.all():
        assert f'id="skill-status-{skill.pk}" class="skill-status status-pending"' in body
    assert "0/50" in body  # success states against the default minimum
    assert "0 of 3 skills trained" in body


def test_task_page_offers_progress_while_a_session_is_active(researcher_client, fetch_block, researcher):
    session = run_session(fetch_block, researcher, WEB_OPTIONS)
    body = researcher_client.get(fetch_block.get_absolute_url()).content.decode()
    progress = reverse("training:session", kwargs={"pk": session.pk})
    assert f'href="{progress}" hx-get="{progress}" hx-target="#modal-root"' in body and "View progress" in body
    assert "Start training" not in body.split('id="training-actions"')[1][:1500]
    go_to_block = fetch_block.skills.get(name="go_to_block")
    assert f'id="skill-status-{go_to_block.pk}" class="skill-status status-training"' in body
    assert 'hx-trigger="every 3s, ' in body  # the panel polls while it trains


def test_task_panel_refreshes_the_tree_badges_out_of_band(researcher_client, fetch_block, researcher):
    run_session(fetch_block, researcher, WEB_OPTIONS)
    url = reverse("training:task_panel", kwargs={"robot": "PointMass", "name": "fetch_block"})
    body = researcher_client.get(url, headers=HTMX).content.decode()
    assert body.lstrip().startswith('<div id="training-panel"')
    assert body.count('hx-swap-oob="true"') == 3


def test_task_cards_show_training_status_quick_train_and_a_checkbox(researcher_client, demo, researcher):
    run_session(demo["fetch_block"], researcher, WEB_OPTIONS)
    body = researcher_client.get(reverse("task_list")).content.decode()
    fetch, patrol = demo["fetch_block"], demo["patrol_beacons"]
    assert f'id="train-badge-{fetch.pk}" class="badge badge-status train-badge status-running"' in body
    assert f'id="train-badge-{patrol.pk}" class="badge badge-status train-badge status-never"' in body
    assert "Never trained" in body
    configure = reverse("training:configure", kwargs={"robot": "PointMass", "name": "patrol_beacons"})
    assert f'href="{configure}" hx-get="{configure}"' in body
    assert f'<input type="checkbox" name="task" value="{patrol.pk}" form="bulk-train" data-bulk-select>' in body
    assert 'id="bulk-train"' in body and "Train selected" in body


def test_task_card_badge_shows_the_last_result(researcher_client, fetch_block, researcher):
    session = run_session(fetch_block, researcher, WEB_OPTIONS)
    TrainingSession.objects.filter(pk=session.pk).update(status=SessionStatus.FAILED)
    url = reverse("training:task_badge", kwargs={"robot": "PointMass", "name": "fetch_block"})
    body = researcher_client.get(url, headers=HTMX).content.decode()
    assert "status-failed" in body and "Failed" in body and "every 5s" not in body


def test_train_selected_queues_each_and_reports_the_ones_already_training(researcher_client, demo, researcher, settings):
    settings.GENHRL_WORKER_SLOTS = 1
    running = run_session(demo["fetch_block"], researcher, WEB_OPTIONS)
    gpu_task = make_task("stack", "G1", backend="isaaclab")
    settings.GENHRL_ISAACLAB_ROOT = None
    ids = [demo["patrol_beacons"].pk, demo["fetch_block"].pk, gpu_task.pk]
    response = researcher_client.post(reverse("training:bulk_start"), {"task": ids}, headers=HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    started = TrainingSession.objects.get(task=demo["patrol_beacons"])
    assert started.status == SessionStatus.QUEUED and started.owner == researcher
    assert started.config["num_envs"] == 512 and started.config["min_success_states"] == 50  # the defaults
    assert "Queued 1 training session" in body and "patrol_beacons" in body
    assert "fetch_block</strong> is already training" in body and f"session #{running.pk}" in body
    assert "stack</strong> was not started" in body and "GENHRL_ISAACLAB_ROOT" in body
    assert f'id="train-badge-{demo["patrol_beacons"].pk}"' in body and 'hx-swap-oob="true"' in body
    assert not TrainingSession.objects.filter(task=gpu_task).exists()
    assert "training-changed" in response["HX-Trigger"]


def test_train_selected_queues_them_in_order_and_says_how_they_run(researcher_client, demo, settings):
    settings.GENHRL_WORKER_SLOTS = 1
    ids = [demo["patrol_beacons"].pk, demo["fetch_block"].pk]
    body = researcher_client.post(reverse("training:bulk_start"), {"task": ids}, headers=HTMX).content.decode()
    assert "Queued 2 training sessions" in body and "one after another" in body
    queued = list(TrainingSession.objects.order_by("created_at", "pk").values_list("task__name", flat=True))
    assert queued == ["fetch_block", "patrol_beacons"]  # alphabetical, as reported


def test_train_selected_without_javascript_reports_with_messages(researcher_client, demo):
    response = researcher_client.post(reverse("training:bulk_start"), {"task": [demo["fetch_block"].pk]}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("task_list")
    assert "Queued 1 training session(s): fetch_block." in response.content.decode()


def test_train_selected_with_nothing_selected_says_so(researcher_client):
    body = researcher_client.post(reverse("training:bulk_start"), {}, headers=HTMX).content.decode()
    assert "Select at least one task." in body
    assert not TrainingSession.objects.exists()


def test_dashboard_lists_active_sessions_and_recent_results(researcher_client, demo, researcher):
    active = run_session(demo["fetch_block"], researcher, WEB_OPTIONS)
    ended = run_session(demo["patrol_beacons"], researcher, WEB_OPTIONS)
    ended.transition_to(SessionStatus.FAILED, actor="worker:test", error="reach_red_beacon: boom\nmore")
    response = researcher_client.get(reverse("dashboard"))
    body = response.content.decode()
    assert [s.pk for s in response.context["active_sessions"]] == [active.pk]
    assert [s.pk for s in response.context["recent_results"]] == [ended.pk]
    assert '<span id="stat-training" class="stat-value">1</span>' in body
    assert "reach_red_beacon: boom" in body
    assert 'hx-trigger="every 3s, training-changed from:body"' in body


def test_dashboard_card_refreshes_the_training_number(researcher_client, fetch_block, researcher):
    run_session(fetch_block, researcher, WEB_OPTIONS)
    url = reverse("training:dashboard_card")
    body = researcher_client.get(url, {"stat": "1"}, headers=HTMX).content.decode()
    assert body.lstrip().startswith('<section class="card training-card" id="active-sessions"')
    assert '<span id="stat-training" class="stat-value" hx-swap-oob="true">1</span>' in body
    assert "stat-training" not in researcher_client.get(url, headers=HTMX).content.decode()


def test_every_page_has_the_live_indicator(researcher_client, fetch_block, researcher):
    body = researcher_client.get(reverse("task_list")).content.decode()
    assert 'id="nav-training"' in body and 'hx-trigger="every 5s, training-changed from:body"' in body
    assert "nav-count" not in body
    run_session(fetch_block, researcher, WEB_OPTIONS)
    indicator = researcher_client.get(reverse("training:indicator"), headers=HTMX).content.decode()
    assert 'data-active-count="1"' in indicator and "is-live" in indicator


def test_training_page_lists_active_and_past_sessions(researcher_client, demo, researcher):
    active = run_session(demo["fetch_block"], researcher, WEB_OPTIONS)
    ended = run_session(demo["patrol_beacons"], researcher, WEB_OPTIONS)
    ended.transition_to(SessionStatus.COMPLETED, actor="worker:test")
    body = researcher_client.get(reverse("training:sessions")).content.decode()
    assert f"#{active.pk}" in body and "History" in body
    history = body.split('id="history-title"')[1]
    assert reverse("training:session", kwargs={"pk": ended.pk}) in history
    assert reverse("training:session", kwargs={"pk": active.pk}) not in history


def test_page_links_that_load_with_htmx_also_have_an_href(researcher_client, demo, researcher):
    run_session(demo["fetch_block"], researcher, WEB_OPTIONS)
    pages = [reverse("dashboard"), reverse("task_list"), demo["fetch_block"].get_absolute_url(),
             reverse("training:sessions")]
    for url in pages:
        body = researcher_client.get(url).content.decode()
        for tag in re.findall(r"<a\b[^>]*\bhx-get=[^>]*>", body):
            assert " href=" in tag, (url, tag)


def test_train_selected_queues_nothing_for_trained_tasks_unless_asked_to_retrain(researcher_client, demo):
    from tests.factories import give_states

    for skill in demo["fetch_block"].skills.all():
        give_states(skill, 60)
    ids = [demo["fetch_block"].pk]
    body = researcher_client.post(reverse("training:bulk_start"), {"task": ids}, headers=HTMX).content.decode()
    assert "Nothing to train" in body and "Queued" not in body
    assert not TrainingSession.objects.exists()

    body = researcher_client.post(reverse("training:bulk_start"), {"task": ids, "retrain": "1"}, headers=HTMX).content.decode()
    assert "Queued 1 training session" in body
    assert TrainingSession.objects.get().config["skip_complete"] is False


def test_a_queued_session_says_queued_not_started(demo, researcher):
    from django.template.loader import render_to_string

    from training import services

    session = services.start_session(demo["fetch_block"], WEB_OPTIONS, owner=researcher)
    item = render_to_string("training/_session_item.html", {"session": session})
    assert "queued " in item and "started" not in item


def test_disabled_start_sits_with_its_reason(client, fetch_block, user):
    client.force_login(user)
    body = client.get(fetch_block.get_absolute_url()).content.decode()
    box = body.split("data-start-denied", 1)[1].split("</div>", 1)[0]
    assert "disabled" in box and "start training” permission" in box
