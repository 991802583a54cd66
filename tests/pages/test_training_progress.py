"""The progress view: page, dialog and live partial, rendered from the database at every request."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.factories import WEB_OPTIONS, run_session
from training.models import MetricPoint, SessionStatus, SkillRun, SkillStatus, Stage, TrainingSession
from training.queries import CURVE_POINTS, curve_points

pytestmark = pytest.mark.django_db
MODAL = {"HX-Request": "true", "HX-Target": "modal-root"}
LIVE = {"HX-Request": "true", "HX-Target": "session-body-1"}


def page_url(session: TrainingSession, view: str = "session") -> str:
    return reverse(f"training:{view}", kwargs={"pk": session.pk})


def test_session_page_shows_stage_skills_states_curves_and_output(researcher_client, fetch_block, researcher):
    session = run_session(fetch_block, researcher, WEB_OPTIONS)
    # States an earlier session saved for a skill this one has not trained yet: not its progress.
    SkillRun.objects.filter(session=session, skill__name="go_to_goal").update(success_states=40)
    response = researcher_client.get(page_url(session))
    assert response.status_code == 200
    body = response.content.decode()
    assert "<dialog" not in body and "<h1>Training" in body
    # Stages: initializing and planning done, training current.
    assert 'class="stage stage-done" data-stage-name="planning"' in body
    assert 'class="stage stage-current" aria-current="step" data-stage-name="training"' in body
    # The sequence, coloured by status, with success states against the minimum and elapsed time.
    assert 'class="skill-card status-training" data-skill="go_to_block" data-status="training"' in body
    assert 'data-skill="go_to_goal" data-status="pending"' in body
    assert "<strong>3</strong> / 5 success states" in body
    assert "40 saved by earlier runs · needs 5" in body and "<strong>40</strong>" not in body
    assert '<dd data-skill-elapsed>42 s</dd>' in body
    assert ">go_to_block</code>" in body.split("data-current-skill")[1][:80]
    # Curves drawn on the server, and the output with the error lines marked.
    assert body.count('class="curve-line"') == 2
    assert '<span class="log-line log-error" data-seq="2">Traceback (most recent call last):</span>' in body
    assert '<span class="log-line log-error" data-seq="3">RuntimeError: boom</span>' in body
    assert '<span class="log-line log-system" data-seq="4">' in body
    # Live: the SSE stream of the API, and the partial refetched on each event.
    assert f'sse-connect="/api/tasks/fetch_block/training/progress/{session.pk}?robot=PointMass"' in body
    assert f'hx-get="{page_url(session, "session_progress")}"' in body


def test_dialog_for_the_modal_and_partial_for_live_updates(researcher_client, fetch_block, researcher):
    session = run_session(fetch_block, researcher, WEB_OPTIONS)
    dialog = researcher_client.get(page_url(session), headers=MODAL).content.decode()
    assert dialog.lstrip().startswith("<dialog") and "Closing this window does not stop training." in dialog
    assert f'hx-get="{page_url(session, "session_progress")}?dialog=1"' in dialog
    partial = researcher_client.get(page_url(session, "session_progress"), {"dialog": "1"}, headers=LIVE)
    text = partial.content.decode()
    assert text.lstrip().startswith('<div class="sp status-running"') and "<html" not in text
    assert 'data-skill="go_to_block"' in text


def test_live_update_resends_the_buttons_only_when_their_state_changed(researcher_client, fetch_block, researcher):
    session = run_session(fetch_block, researcher, WEB_OPTIONS)
    url = page_url(session, "session_progress")
    first = researcher_client.get(url, headers=LIVE)
    assert 'hx-swap-oob="true"' in first.content.decode()  # the client said nothing: send them
    key = first.context["actions_key"]
    assert key == "running:0:1"
    same = researcher_client.get(url, {"shown": key}, headers=LIVE).content.decode()
    assert "session-actions-" not in same
    TrainingSession.objects.filter(pk=session.pk).update(cancel_requested_at=timezone.now())
    changed = researcher_client.get(url, {"shown": key}, headers=LIVE).content.decode()
    assert f'id="session-actions-{session.pk}" class="session-actions" hx-swap-oob="true"' in changed
    assert "Stopping…" in changed


def test_queued_session_shows_its_place_in_the_queue(researcher_client, demo, queue):
    first = queue(demo["patrol_beacons"], WEB_OPTIONS)
    second = queue(demo["fetch_block"], WEB_OPTIONS)
    body = researcher_client.get(page_url(second)).content.decode()
    assert 'data-queue-position="2"' in body and "#2 in line" in body
    assert 'data-queue-position="1"' in researcher_client.get(page_url(first)).content.decode()
    # Before planning, the skills it will train are listed, all pending.
    assert body.count('data-status="pending"') == 3


def test_failed_session_says_what_to_try(researcher_client, fetch_block, researcher):
    session = run_session(fetch_block, researcher, WEB_OPTIONS, num_envs=256)
    run = session.skill_runs.get(order=0)
    error = "GPU out of memory: reduce parallel environments (--num-envs, now 256).\nthe trainer exited with code 1"
    run.transition_to(SkillStatus.FAILED, actor="worker:test", error=error, stop_reason="out_of_memory")
    session.transition_to(SessionStatus.FAILED, actor="worker:test", error=f"go_to_block: {error}")
    session.set_stage(Stage.COMPLETE, actor="worker:test")
    response = researcher_client.get(page_url(session))
    body = response.content.decode()
    assert "Training failed" in body
    assert "retry with fewer parallel environments (now 256), e.g. 128" in body
    assert "skills that completed are skipped" in body
    assert 'class="stage stage-failed" data-stage-name="complete"' in body
    assert "sse-connect" not in body  # nothing more will happen: no stream
    assert "Retry" in body and "Change settings" in body and "Cancel training" not in body


@pytest.mark.parametrize(("failure", "hint"), [
    ({"code": "time_limit"}, "raise the max time per skill (now 2 min)"),
    ({"undefined_sub_skill": "x"}, "needs its sub-skills' policies"),
    ({"code": "setup"}, "needs its sub-skills' policies"),
    ({"code": "spec_invalid"}, "(embedded.json) is invalid"),
    ({"code": "interrupted"}, "Retry resumes from the skills"),
    ({}, "Read the trainer's output below"),
])
def test_failure_hints_follow_the_failure_code(fetch_block, researcher, failure, hint):
    """Hints are keyed by the failed run's code (its stop_reason), never by the wording of an error."""
    from training.queries import failure_hints

    session = run_session(fetch_block, researcher, WEB_OPTIONS, max_time=2)
    if "code" in failure:
        run = session.skill_runs.get(order=0)
        run.transition_to(SkillStatus.FAILED, actor="worker:test", error="worded any way", stop_reason=failure["code"])
    if "undefined_sub_skill" in failure:
        # Planning refused the task before any run existed.
        session.skill_runs.all().delete()
        root = fetch_block.skills.get(name="fetch_block")
        root.sub_skills = [*root.sub_skills, failure["undefined_sub_skill"]]
        root.save(update_fields=["sub_skills"])
    TrainingSession.objects.filter(pk=session.pk).update(status=SessionStatus.FAILED, error="worded any way")
    session.refresh_from_db()
    assert any(hint in line for line in failure_hints(session))


def test_long_curves_are_thinned_to_a_few_hundred_points_with_the_last_one(fetch_block, researcher):
    session = run_session(fetch_block, researcher, WEB_OPTIONS)
    run = session.skill_runs.get(order=0)
    now = timezone.now()
    MetricPoint.objects.bulk_create(
        MetricPoint(skill_run=run, tag="fps", step=i * 10, value=float(i), time=now) for i in range(1, 5001)
    )
    points = curve_points(run, "fps")
    assert CURVE_POINTS // 2 < len(points) <= CURVE_POINTS + 1
    assert points[0] == (10, 1.0) and points[-1] == (50000, 5000.0)
    assert [p[0] for p in points] == sorted(p[0] for p in points)


def test_terminal_session_page_has_no_stream(researcher_client, fetch_block, researcher):
    session = run_session(fetch_block, researcher, WEB_OPTIONS)
    for run in SkillRun.objects.filter(session=session):
        if run.status == SkillStatus.TRAINING:
            run.transition_to(SkillStatus.COMPLETED, actor="worker:test")
    session.transition_to(SessionStatus.COMPLETED, actor="worker:test")
    body = researcher_client.get(page_url(session)).content.decode()
    assert "sse-connect" not in body and "data-terminal" in body
    assert "Every skill of fetch_block is trained." in body


def test_anonymous_is_sent_to_login_and_unknown_sessions_are_404(researcher_client, fetch_block, researcher):
    session = run_session(fetch_block, researcher, WEB_OPTIONS)
    client = Client()
    for view in ("session", "session_progress", "session_cancel"):
        response = client.get(page_url(session, view))
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), view
    assert client.post(page_url(session, "session_retry")).status_code == 302
    assert researcher_client.get(reverse("training:session", kwargs={"pk": 999999})).status_code == 404
    assert researcher_client.get(reverse("training:session_progress", kwargs={"pk": 999999})).status_code == 404


def test_an_unfinished_session_counts_what_is_left_untrained(researcher_client, demo, researcher):
    session = run_session(demo["patrol_beacons"], researcher, WEB_OPTIONS)
    runs = list(session.skill_runs.order_by("order"))
    SkillRun.objects.filter(pk__in=[r.pk for r in runs[:3]]).update(status=SkillStatus.COMPLETED)
    SkillRun.objects.filter(pk__in=[r.pk for r in runs[3:]]).update(status=SkillStatus.CANCELLED)
    TrainingSession.objects.filter(pk=session.pk).update(status=SessionStatus.CANCELLED, finished_at=timezone.now())
    body = researcher_client.get(page_url(session)).content.decode()
    assert "3 <span class=\"muted\">of 7</span>" in body
    assert "Left untrained</dt><dd data-remaining>4</dd>" in body
