"""Issue 13b end to end on one real training run: its recorded video plays with HTTP range requests,
its TensorBoard logs and the skill's published policy download as zips, `manage.py evaluate` and the
task page's Evaluate button report a success rate, and `manage.py tensorboard` serves the run on
loopback under a readable name.

`go_to_block` (fetch_block) is trained once by the real trainer subprocess (video on, tiny settings;
`trained_go_to_block` in tests/conftest.py); each test copies its run folder and policy into its own
data folder (`trained_block_run`).
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import urllib.request
import zipfile
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from tests.factories import wait_for
from training.eval_models import Evaluation
from training.management.commands.tensorboard import tensorboard_argv
from training.models import SkillRun


def _body(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_a_recorded_video_answers_range_requests(researcher_client: Client, trained_block_run: SkillRun) -> None:
    page = researcher_client.get(reverse("training:session_media", args=[trained_block_run.session_id])).content.decode()
    sources = re.findall(r'<video[^>]*src="([^"]+)"', page)
    steps = [int(s) for s in re.findall(r"recorded at step (\d+)", page)]
    assert sources and steps == sorted(steps, reverse=True)  # newest first
    name = sources[0].rsplit("/", 1)[1]
    data = (Path(trained_block_run.run_dir) / "videos" / "train" / name).read_bytes()
    assert data[4:8] == b"ftyp" and len(data) > 1200  # a real mp4

    part = researcher_client.get(sources[0], HTTP_RANGE="bytes=100-1099")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 100-1099/{len(data)}" and part["Content-Type"] == "video/mp4"
    assert _body(part) == data[100:1100]
    tail = researcher_client.get(sources[0], HTTP_RANGE="bytes=-50")
    assert tail.status_code == 206 and _body(tail) == data[-50:]
    whole = researcher_client.get(sources[0])
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes" and _body(whole) == data
    assert researcher_client.get(sources[0], HTTP_RANGE=f"bytes={len(data)}-").status_code == 416
    # Only files the run really has; and only for signed-in people.
    assert researcher_client.get(sources[0].replace(name, "rl-video-step-999999.mp4")).status_code == 404
    assert researcher_client.get(
        reverse("training:run_video", args=[trained_block_run.pk, "train", "..spec.json"])).status_code == 404
    assert Client().get(sources[0]).status_code == 302  # anonymous: to the login page


def test_policy_and_tensorboard_logs_download_as_zips(researcher_client: Client, trained_block_run: SkillRun) -> None:
    skill = trained_block_run.skill
    policy = researcher_client.get(reverse("training:skill_policy", args=[skill.pk]))
    assert policy.status_code == 200 and policy["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(_body(policy))).namelist()
    assert sorted(n.split("/", 1)[1] for n in names) == ["agent.yaml", "policy.pth", "skill.json"]
    logs = researcher_client.get(reverse("training:session_logs", args=[trained_block_run.session_id]))
    archive = zipfile.ZipFile(io.BytesIO(_body(logs)))
    label = f"s{trained_block_run.session_id}-fetch_block-go_to_block/"
    assert archive.testzip() is None and any(n.startswith(label) and "tfevents" in n for n in archive.namelist())
    assert Client().get(reverse("training:skill_policy", args=[skill.pk])).status_code == 302
    other = trained_block_run.skill.task.skills.get(name="go_to_goal")  # no policy yet
    assert researcher_client.get(reverse("training:skill_policy", args=[other.pk])).status_code == 404


def test_evaluate_command_reports_a_success_rate(trained_block_run: SkillRun, researcher_client: Client) -> None:
    with pytest.raises(CommandError, match="between 1 and"):
        call_command("evaluate", "fetch_block", "go_to_block", "--episodes", "0")
    with pytest.raises(CommandError, match="no published policy"):
        call_command("evaluate", "fetch_block", "go_to_goal")
    assert not Evaluation.objects.exists()  # bad input changes nothing

    out = StringIO()
    call_command("evaluate", "fetch_block", "go_to_block", "--episodes", "20", "--video", stdout=out)
    evaluation = Evaluation.objects.get()
    assert evaluation.status == Evaluation.Status.COMPLETED and evaluation.episodes == 20
    assert 0.0 <= evaluation.success_rate <= 1.0 and evaluation.successes == round(evaluation.success_rate * 20)
    assert f"success rate {evaluation.success_rate:.1%}" in out.getvalue() and evaluation.video_file

    task = trained_block_run.skill.task
    panel = researcher_client.get(reverse("training:task_policies", args=[task.robot, task.name])).content.decode()
    assert f"{round(evaluation.success_rate * 100)}% success" in panel
    video = researcher_client.get(reverse("training:evaluation_video", args=[evaluation.pk]), HTTP_RANGE="bytes=0-9")
    assert video.status_code == 206 and _body(video)[4:8] == b"ftyp"


@pytest.mark.django_db(transaction=True)
def test_the_evaluate_button_runs_in_the_background(
    trained_block_run: SkillRun, researcher_client: Client, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    from tests.live import live_database_url

    # The background process is `manage.py evaluate --run ID` on this test database and data folder.
    monkeypatch.setenv("DATABASE_URL", live_database_url())
    monkeypatch.setenv("GENHRL_DATA_DIR", str(Path(settings.GENHRL_RUNS_DIR).parent))
    skill = trained_block_run.skill
    url = reverse("training:evaluate_skill", args=[skill.pk])
    assert researcher_client.post(url, {"episodes": "nope"}).status_code == 302
    assert not Evaluation.objects.exists()

    answer = researcher_client.post(url, {"episodes": "10"}, HTTP_HX_REQUEST="true")
    assert answer.status_code == 200 and "evaluating 10 episodes" in answer.content.decode()  # did not wait
    evaluation = Evaluation.objects.get()
    assert wait_for(lambda: Evaluation.objects.get().status == "completed", timeout=90), Evaluation.objects.get().error
    evaluation.refresh_from_db()
    assert evaluation.success_rate is not None

    # Killed while it runs: it never shows a result, and the page says it was interrupted.
    researcher_client.post(url, {"episodes": "10"})
    killed = Evaluation.objects.latest("pk")
    assert wait_for(lambda: Evaluation.objects.get(pk=killed.pk).pid is not None, timeout=10)
    os.killpg(Evaluation.objects.get(pk=killed.pk).pid, signal.SIGKILL)  # its own process group
    task = skill.task
    assert wait_for(lambda: "interrupted" in researcher_client.get(
        reverse("training:task_policies", args=[task.robot, task.name])).content.decode(), timeout=10)
    killed.refresh_from_db()
    assert killed.status == "interrupted" and killed.success_rate is None


def test_tensorboard_command_serves_named_runs_on_loopback(trained_block_run: SkillRun) -> None:
    label = f"s{trained_block_run.session_id}-fetch_block-go_to_block"
    summaries = (Path(trained_block_run.run_dir) / "summaries").resolve()
    out = StringIO()
    call_command("tensorboard", str(trained_block_run.session_id), "--print", stdout=out)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = tensorboard_argv([(label, summaries)], port)
    assert argv[1:] == ["-m", "tensorboard.main", "--logdir_spec", f"{label}:{summaries}", "--host", "127.0.0.1",
                        "--port", str(port)]
    assert f"{label}:{summaries}" in out.getvalue()
    with pytest.raises(CommandError, match="no such session"):
        call_command("tensorboard", "999999")

    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # argv list
    try:
        def runs() -> list[str]:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=2) as answer:
                    return json.loads(answer.read())
            except OSError:
                return []

        # TensorBoard names a run "<name>/<subfolder>" ("." for event files directly in the folder).
        assert wait_for(lambda: any(r.split("/")[0] == label for r in runs()), timeout=60, interval=0.5), runs()
    finally:
        process.terminate()  # by its own pid
        process.wait(timeout=20)
