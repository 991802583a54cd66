"""The configuration dialog: defaults, help, status, estimate, validation errors, start and 409."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.factories import WEB_OPTIONS
from training.config import NUM_ENVS
from training.models import SessionStatus, SkillRun, SkillStatus, TrainingSession

pytestmark = pytest.mark.django_db
MODAL = {"HX-Request": "true", "HX-Target": "modal-root"}
FORM = {"HX-Request": "true", "HX-Target": "config-form"}


def url(task, action: str = "configure") -> str:
    return reverse(f"training:{action}", kwargs={"robot": task.robot, "name": task.name})


def form_data(**changes) -> dict[str, str]:
    data = {
        "backend": "embedded", "max_time": "180", "min_success_states": "50", "num_envs": "512", "seed": "42",
        "skip_complete": "on", "headless": "on", "video_interval": "2000", "video_length": "200",
        "min_steps_primitive": "100000", "min_steps_composite": "50000",
    }
    data.update({k: str(v) for k, v in changes.items()})
    return {k: v for k, v in data.items() if v != "off"}


def test_dialog_shows_every_option_with_its_default_and_help(researcher_client, fetch_block):
    response = researcher_client.get(url(fetch_block), headers=MODAL)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith("<dialog")
    form = response.context["form"]
    assert form["max_time"].value() == "180"
    assert form["min_success_states"].value() == 50
    assert form["num_envs"].value() == NUM_ENVS["embedded"][0]
    assert form["seed"].value() == 42
    assert form["new_run"].value() is False and form["skip_complete"].value() is True
    assert form["headless"].value() is True and form["video"].value() is False
    assert form["video_interval"].value() == 2000 and form["video_length"].value() == 200
    for name in ("max_time", "min_success_states", "num_envs", "seed", "new_run", "skip_complete", "headless",
                 "video", "video_interval", "video_length", "backend"):
        assert f'id="id_{name}_helptext"' in body, name
    assert "deletes every success state" in body  # the new-run warning
    assert 'data-range-isaaclab="1024,8192"' in body and 'data-default-isaaclab="4096"' in body


def test_dialog_shows_the_tasks_status_and_a_heuristic_estimate(researcher_client, fetch_block):
    response = researcher_client.get(url(fetch_block), headers=MODAL)
    assert response.context["totals"] == {"total": 3, "completed": 0, "pending": 3}
    body = response.content.decode()
    for skill in ("go_to_block", "go_to_goal", "fetch_block"):
        assert f"<code>{skill}</code>" in body
    estimate = response.context["estimate"]
    assert estimate.to_train == 3 and not estimate.from_history
    # Before any run: the frames each kind needs at 512 environments over bench_trainer's speed.
    assert [part.basis for part in estimate.parts] == ["bench", "bench"]
    assert 10 < estimate.seconds < 60  # the demo's fetch_block trains in 16-36 s on a laptop
    assert "bench_trainer's measured speed" in body
    assert "Upper bound, not a forecast: 9 h 00 min if each of the 3 skills used its whole 3 h 00 min time limit" in body


def test_estimate_uses_this_tasks_past_runs(researcher_client, fetch_block, queue):
    session = queue(fetch_block, WEB_OPTIONS)
    skill = fetch_block.skills.get(name="go_to_block")
    SkillRun.objects.create(session=session, skill=skill, order=0, status=SkillStatus.COMPLETED, elapsed_seconds=30)
    SkillRun.objects.create(
        session=session, skill=fetch_block.skills.get(name="go_to_goal"), order=1,
        status=SkillStatus.COMPLETED, elapsed_seconds=50,
    )
    # A session from before flat baselines existed: its configuration has no `flat` key, and counts.
    older_config = {key: value for key, value in session.config.items() if key != "flat"}
    TrainingSession.objects.filter(pk=session.pk).update(status=SessionStatus.COMPLETED, config=older_config)
    response = researcher_client.get(url(fetch_block, "estimate"), {**form_data(num_envs=64), "skip_complete": ""}, headers=FORM)
    estimate = response.context["estimate"]
    primitive = next(p for p in estimate.parts if p.kind == "primitive")
    assert primitive.from_history and primitive.runs == 2 and primitive.seconds_each == 40
    assert "mean of 2 completed primitive runs of this task at 64 environments" in response.content.decode()


def test_estimate_follows_the_options_as_typed(researcher_client, fetch_block):
    response = researcher_client.get(url(fetch_block, "estimate"), form_data(max_time="0.5"), headers=FORM)
    assert response.context["estimate"].upper_bound == 3 * 30
    assert "--max-time 0.5" in response.context["cli"]
    # A bad value gives no command line, and the estimate falls back to the default.
    response = researcher_client.get(url(fetch_block, "estimate"), form_data(max_time="soon"), headers=FORM)
    assert response.context["cli"] == "" and response.context["estimate"].upper_bound == 3 * 180 * 60


def test_bad_values_come_back_inline_with_the_configs_own_messages(researcher_client, fetch_block):
    data = form_data(num_envs="100000", min_success_states="0", seed="x", max_time="-1")
    response = researcher_client.post(url(fetch_block), data, headers=FORM)
    assert response.status_code == 422
    body = response.content.decode()
    assert body.lstrip().startswith("<form") and 'id="config-form"' in body
    errors = response.context["form"].errors
    assert errors["num_envs"] == ["must be between 16 and 8192"]
    assert errors["min_success_states"] == ["must be between 1 and 10000000"]
    assert errors["seed"] == ["must be a whole number"]
    assert "must be more than 0" in errors["max_time"][0]
    assert 'class="field-error"' in body and "must be between 16 and 8192" in body
    assert not TrainingSession.objects.exists()


def test_isaaclab_range_applies_when_isaaclab_is_chosen(researcher_client, fetch_block, settings, tmp_path):
    settings.GENHRL_ISAACLAB_ROOT = tmp_path
    response = researcher_client.post(url(fetch_block), form_data(backend="isaaclab", num_envs="512"), headers=FORM)
    assert response.status_code == 422
    assert response.context["form"].errors["num_envs"] == ["must be between 1024 and 8192", "the Isaac Lab range is 1024-8192"]


def test_isaaclab_without_its_root_is_refused_on_the_backend_field(researcher_client, fetch_block, settings):
    settings.GENHRL_ISAACLAB_ROOT = None
    response = researcher_client.post(url(fetch_block), form_data(backend="isaaclab", num_envs="4096"), headers=FORM)
    assert response.status_code == 422
    assert "GENHRL_ISAACLAB_ROOT" in response.context["form"].errors["backend"][0]


def test_start_queues_the_session_and_opens_the_progress_dialog(researcher_client, researcher, fetch_block):
    response = researcher_client.post(url(fetch_block), form_data(**WEB_OPTIONS), headers=FORM)
    assert response.status_code == 200
    session = TrainingSession.objects.get()
    assert session.owner == researcher and session.status == SessionStatus.QUEUED
    assert session.config["num_envs"] == 64 and session.config["min_success_states"] == 5
    assert session.config["max_time"] == 2.0 and session.config["skip_complete"] is True
    assert response["HX-Retarget"] == "#modal-root" and response["HX-Reswap"] == "innerHTML"
    assert "training-changed" in response["HX-Trigger"]
    body = response.content.decode()
    assert body.lstrip().startswith("<dialog") and 'class="modal modal-progress"' in body
    progress = f"/api/tasks/fetch_block/training/progress/{session.pk}?robot=PointMass"
    assert f'sse-connect="{progress}"' in body and 'sse-close="done"' in body
    assert 'hx-trigger="sse:progress, sse:done, poll"' in body


def test_start_without_javascript_redirects_to_the_session_page(researcher_client, fetch_block):
    response = researcher_client.post(url(fetch_block), form_data(**WEB_OPTIONS))
    session = TrainingSession.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("training:session", kwargs={"pk": session.pk})


def test_page_without_javascript_is_a_plain_form(researcher_client, fetch_block):
    response = researcher_client.get(url(fetch_block))
    body = response.content.decode()
    assert "<dialog" not in body and 'id="config-form"' in body and "hx-post" not in body.split('id="config-form"')[1].split(">")[0]
    assert 'method="post"' in body


def test_second_start_is_409_with_a_link_to_the_running_session(researcher_client, fetch_block, queue):
    running = queue(fetch_block, WEB_OPTIONS)
    response = researcher_client.post(url(fetch_block), form_data(**WEB_OPTIONS), headers=FORM)
    assert response.status_code == 409
    body = response.content.decode()
    assert "fetch_block is already training" in body
    link = reverse("training:session", kwargs={"pk": running.pk})
    assert re.search(rf'href="{link}" hx-get="{link}" hx-target="#modal-root"', body)
    assert TrainingSession.objects.count() == 1


def test_settings_of_an_earlier_session_prefill_the_form_without_new_run(researcher_client, fetch_block, queue):
    earlier = queue(fetch_block, WEB_OPTIONS, new_run=True, num_envs=128)
    TrainingSession.objects.filter(pk=earlier.pk).update(status=SessionStatus.FAILED)
    response = researcher_client.get(url(fetch_block) + f"?from={earlier.pk}", headers=MODAL)
    form = response.context["form"]
    assert form["num_envs"].value() == 128 and form["new_run"].value() is False


def test_cli_line_matches_manage_py_train(researcher_client, fetch_block):
    response = researcher_client.get(url(fetch_block, "estimate"), form_data(num_envs="1024", seed="123", video="on", new_run="on"))
    assert response.context["cli"] == (
        "python manage.py train fetch_block --robot PointMass --num-envs 1024 --seed 123 --new-run --video"
    )


def test_anonymous_is_sent_to_login(client, fetch_block):
    for target in (url(fetch_block), url(fetch_block, "estimate")):
        response = client.get(target)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    response = client.post(url(fetch_block), form_data())
    assert response.status_code == 302 and not TrainingSession.objects.exists()


def test_unknown_task_is_404(researcher_client):
    assert researcher_client.get(reverse("training:configure", kwargs={"robot": "X", "name": "nope"})).status_code == 404


def test_video_interval_and_length_are_disabled_with_videos_off_and_not_needed(researcher_client, researcher, fetch_block):
    body = researcher_client.get(url(fetch_block), headers=MODAL).content.decode()
    assert re.search(r'<fieldset class="cfg-grid video-fields" data-video-fields disabled>', body)
    # A disabled field is not sent: the start still works, with the defaults.
    data = {k: v for k, v in form_data(**WEB_OPTIONS).items() if not k.startswith("video_")}
    response = researcher_client.post(url(fetch_block), data, headers=FORM)
    assert response.status_code == 200, response.context["form"].errors
    config = TrainingSession.objects.get().config
    assert config["video_interval"] == 2000 and config["video_length"] == 200
    body = researcher_client.get(url(fetch_block), {"from": TrainingSession.objects.get().pk}, headers=MODAL).content.decode()
    assert "data-video-fields disabled" in body


def test_a_skill_with_its_states_but_no_policy_says_why_it_still_needs_training(researcher_client, fetch_block):
    from tests.factories import give_states

    give_states(fetch_block.skills.get(name="go_to_block"), 54, policy=False)
    body = researcher_client.get(url(fetch_block), headers=MODAL).content.decode()
    assert "54/50 *" in body
    assert re.search(r"<code>go_to_block</code> still needs training: it has enough success states but no published policy", body)


def test_first_estimate_follows_the_environments_and_this_hosts_speed(researcher_client, fetch_block, patrol, queue):
    def estimate(task, **changes):
        return researcher_client.get(url(task, "estimate"), form_data(**changes), headers=FORM).context["estimate"]

    small, big = estimate(fetch_block, num_envs=512), estimate(fetch_block, num_envs=8192)
    assert small.seconds != big.seconds and 10 < big.seconds < 120
    assert 30 < estimate(patrol).seconds < 120  # patrol_beacons trains in 40-75 s on a laptop

    # A completed run elsewhere measured this host: its speed is used, and said so.
    session = queue(patrol, WEB_OPTIONS)
    SkillRun.objects.create(
        session=session, skill=patrol.skills.get(name="reach_red_beacon"), order=0,
        status=SkillStatus.COMPLETED, elapsed_seconds=5, frames=400_000, fps=80_000,
    )
    response = researcher_client.get(url(fetch_block, "estimate"), form_data(), headers=FORM)
    primitive = response.context["estimate"].parts[0]
    assert (primitive.basis, primitive.fps, primitive.runs) == ("host", 80_000, 1)
    assert "this host's speed (80,000 frames/s, median of its last 1 primitive run)" in response.content.decode()


def test_with_several_slots_the_estimate_follows_the_longest_chain(researcher_client, patrol, settings):
    settings.GENHRL_WORKER_SLOTS = 4
    response = researcher_client.get(url(patrol, "estimate"), form_data(), headers=FORM)
    estimate = response.context["estimate"]
    p, c = (part.seconds_each for part in estimate.parts)
    assert estimate.seconds == pytest.approx(4 * p + 3 * c)
    # red -> blue -> patrol_north -> patrol_south -> patrol_beacons; green and yellow train beside them.
    assert estimate.parallel_seconds == pytest.approx(2 * p + 3 * c)
    assert "With this server's 4 training slots" in response.content.decode()
    settings.GENHRL_WORKER_SLOTS = 1
    assert researcher_client.get(url(patrol, "estimate"), form_data(), headers=FORM).context["estimate"].parallel_seconds is None
