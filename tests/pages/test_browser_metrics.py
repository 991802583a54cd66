"""In a real chromium against a real daphne: the metrics explorer on a session page (uPlot canvas,
the tag chooser adds and removes charts, smoothing and log scale redraw, a training run's chart
grows as points are written) and the comparison reached
from the history's checkboxes (the overlay's canvas), under the portal's real CSP."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.live import LiveDaphne
from training import paths
from training.models import SessionStatus, SkillRun, SkillStatus, TrainingSession

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _append_points(folder: Path, tag: str, count: int, sign: int = 1) -> None:
    """What a trainer does next: more points of `tag` (0, 1, 2, ... times `sign`), written by
    TensorBoard's own writer."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(folder))
    for i in range(count):
        value = summary_pb2.Summary.Value(tag=tag, simple_value=float(sign * i))
        writer.add_event(event_pb2.Event(wall_time=time.time(), step=10**7 + i, summary=summary_pb2.Summary(value=[value])))
    writer.close()


@pytest.fixture
def on_daphne(settings, live_daphne: LiveDaphne):
    # The sessions' run folders must lie inside the server's training folder.
    settings.GENHRL_RUNS_DIR = live_daphne.log_path.parent / "training"
    return live_daphne


@pytest.fixture
def page(chromium, on_daphne: LiveDaphne, researcher):
    context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    context.add_cookies([on_daphne.session_cookie(researcher)])
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" or "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    yield page
    context.close()
    assert problems == []


def test_metrics_explorer_and_comparison(page, on_daphne: LiveDaphne, compared_sessions) -> None:
    from playwright.sync_api import expect

    first, second = compared_sessions
    # Curves a log axis cannot show whole: one from 0 up, one never above 0 (a loss, a penalty).
    summaries = Path(first.skill_runs.get().run_dir) / "summaries"
    _append_points(summaries, "probe/from_zero", 4)
    _append_points(summaries, "probe/not_positive", 3, sign=-1)
    page.goto(on_daphne.url(f"/training/sessions/{first.pk}/"))
    explorer = page.locator("[data-metrics-explorer]")
    expect(explorer.locator(".mx-chart canvas")).to_have_count(2)  # rewards/step, episode_lengths/step
    expect(explorer.get_by_label("rewards/step", exact=True)).to_be_checked()
    explorer.get_by_label("losses/c_loss", exact=True).check()
    expect(explorer.locator(".mx-chart")).to_have_count(3)
    expect(explorer.locator(".mx-chart .u-title", has_text="losses/c_loss")).to_be_visible()
    explorer.get_by_label("episode_lengths/step", exact=True).uncheck()
    expect(explorer.locator(".mx-chart")).to_have_count(2)
    explorer.locator("[data-mx-smooth]").fill("0.9")
    explorer.get_by_label("log scale").check()
    explorer.get_by_label("X axis").select_option("wall_time")
    expect(explorer.locator(".mx-chart canvas")).to_have_count(2)
    expect(explorer.locator("[data-mx-note]")).to_have_count(0)
    # Log scale and values <= 0: left out and counted, or, with nothing above 0, a linear chart that says why.
    explorer.get_by_label("probe/from_zero", exact=True).check()
    explorer.get_by_label("probe/not_positive", exact=True).check()
    expect(explorer.locator('[data-chart-key="probe/from_zero"] [data-mx-note]')).to_have_text("log scale hides 1 value <= 0.")
    not_positive = explorer.locator('[data-chart-key="probe/not_positive"]')
    expect(not_positive.locator("[data-mx-note]")).to_contain_text("Log scale is off for this chart: all its 3 values are <= 0")
    assert not_positive.evaluate("box => box._plot.scales.y.distr") == 1
    explorer.get_by_label("log scale").uncheck()
    expect(explorer.locator("[data-mx-note]")).to_have_count(0)
    explorer.get_by_label("log scale").check()

    # Live: while the run trains, new points the trainer writes appear without a reload.
    run = first.skill_runs.get()
    SkillRun.objects.filter(pk=run.pk).update(status=SkillStatus.TRAINING)
    TrainingSession.objects.filter(pk=first.pk).update(status=SessionStatus.RUNNING)
    page.reload()
    chart = explorer.locator('[data-chart-key="rewards/step"]')
    expect(chart.locator("canvas")).to_have_count(1)
    before = chart.evaluate("box => box._plot.data[0].length")
    _append_points(Path(run.run_dir) / "summaries", "rewards/step", 5)
    page.wait_for_function(
        "([n]) => document.querySelector('[data-chart-key=\"rewards/step\"]')._plot.data[0].length === n",
        arg=[before + 5], timeout=10_000)

    # The session moves on: the explorer follows it to the skill training now...
    def next_skill_trains(name: str, order: int) -> SkillRun:
        started = SkillRun.objects.create(session=first, skill=first.task.skills.get(name=name), order=order,
                                          status=SkillStatus.TRAINING)
        folder = paths.run_dir(started.skill, started.pk)
        _append_points(folder / "summaries", "rewards/step", 3)
        SkillRun.objects.filter(pk=started.pk).update(run_dir=str(folder))
        return started

    skill_run = explorer.get_by_label("Skill run")
    SkillRun.objects.filter(pk=run.pk).update(status=SkillStatus.COMPLETED)
    second_skill = next_skill_trains("go_to_goal", 1)
    expect(skill_run).to_have_value(str(second_skill.pk))
    expect(explorer.locator("[data-mx-follow]")).to_have_text(
        "Now showing go_to_goal, which is training now (go_to_block completed).")
    expect(skill_run.locator("option", has_text="go_to_block · completed")).to_have_count(1)
    expect(explorer.locator('[data-chart-key="rewards/step"] canvas')).to_have_count(1)
    # ...unless the person chose a run: that stays, and the next skill is offered.
    skill_run.select_option(str(run.pk))
    SkillRun.objects.filter(pk=second_skill.pk).update(status=SkillStatus.COMPLETED)
    root_skill = next_skill_trains("fetch_block", 2)
    offer = explorer.get_by_role("button", name="Show fetch_block")
    expect(offer).to_be_visible()
    expect(explorer.locator("[data-mx-follow]")).to_contain_text("fetch_block is training now (shown: go_to_block completed)")
    expect(skill_run).to_have_value(str(run.pk))
    offer.click()
    expect(skill_run).to_have_value(str(root_skill.pk))
    expect(explorer.locator('[data-chart-key="rewards/step"] canvas')).to_have_count(1)

    # History → tick both → Compare (the first session as it was: ended, its one run).
    page.goto("about:blank")
    SkillRun.objects.filter(pk__in=[second_skill.pk, root_skill.pk]).delete()
    TrainingSession.objects.filter(pk=first.pk).update(status=SessionStatus.COMPLETED)
    page.goto(on_daphne.url("/training/"))
    page.get_by_label(f"Compare session {first.pk}").check()
    expect(page.get_by_role("button", name="Compare")).to_be_disabled()  # one is not a comparison
    page.get_by_label(f"Compare session {second.pk}").check()
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_role("heading", name="Compare sessions")).to_be_visible()
    expect(page.locator("tr[data-differs][data-option=seed]")).to_be_visible()
    overlay = page.locator("[data-compare-overlay]")
    expect(overlay.locator(".mx-chart canvas")).to_have_count(1)
    expect(overlay.locator(".u-legend .u-series")).to_have_count(3)  # x, and one per session
    overlay.get_by_label("Tag").select_option("losses/a_loss")
    expect(overlay.locator(".u-title", has_text="losses/a_loss")).to_be_visible()
    overlay.get_by_label("Tag").select_option("probe/not_positive")
    overlay.get_by_label("log scale").check()
    expect(overlay.locator("[data-mx-note]")).to_contain_text("Log scale is off for this chart")
