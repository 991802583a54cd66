"""Presets through every entry point: saved from the training dialog, loaded into it, used by
`manage.py train --preset` and by the API's start; a preset that no longer validates says so in
each of them instead of starting."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from tests.factories import api_url, fake_builder
from training.engine import planning
from training.lab_models import Preset
from training.models import SessionStatus, TrainingSession

pytestmark = [pytest.mark.django_db]

FORM = {"HX-Request": "true", "HX-Target": "config-form"}
# The dialog's fields as a person fills them (small enough for the fake trainer).
DIALOG = {
    "backend": "embedded", "max_time": "1", "min_success_states": "10", "num_envs": "64", "seed": "7",
    "skip_complete": "on", "headless": "on", "video_interval": "2000", "video_length": "200",
    "min_steps_primitive": "0", "min_steps_composite": "0", "learning_rate": "0.0003", "mini_epochs": "3",
}


def configure_url(task) -> str:
    return reverse("training:configure", kwargs={"robot": task.robot, "name": task.name})


def save_url(task) -> str:
    return reverse("training:preset_save", kwargs={"robot": task.robot, "name": task.name})


def test_a_preset_round_trip_through_the_form_the_cli_and_the_api(
    researcher_client, researcher, fetch_block, token_client, monkeypatch
):
    # 1. Saved from the training dialog ("Save as preset" posts the whole form).
    response = researcher_client.post(save_url(fetch_block), {**DIALOG, "preset-name": "tiny"})
    preset = Preset.objects.get(owner=researcher, name="tiny")
    assert response.status_code == 302 and response["Location"].endswith(f"?preset={preset.pk}")
    assert preset.options["num_envs"] == 64 and preset.options["learning_rate"] == 3e-4
    assert preset.options["mini_epochs"] == 3 and "new_run" not in preset.options

    # 2. Loaded into the dialog: the fields hold the preset's values.
    response = researcher_client.get(configure_url(fetch_block), {"preset": preset.pk}, headers=FORM)
    form = response.context["form"]
    assert (form["num_envs"].value(), form["seed"].value(), form["learning_rate"].value()) == (64, 7, 3e-4)
    assert "Loaded preset" in response.content.decode()

    # 3. The terminal: `manage.py train fetch_block --preset researcher/tiny` (flags go on top).
    monkeypatch.setattr(planning, "default_command_builder", fake_builder())
    call_command("train", "fetch_block", "--preset", "researcher/tiny", "--seed", "11",
                 stdout=io.StringIO(), stderr=io.StringIO())
    cli = TrainingSession.objects.get()
    assert cli.status == SessionStatus.COMPLETED
    assert {k: cli.config[k] for k in ("num_envs", "learning_rate", "mini_epochs", "max_time")} == {
        "num_envs": 64, "learning_rate": 3e-4, "mini_epochs": 3, "max_time": 1.0}
    assert cli.config["seed"] == 11
    # The trainer got the preset's PPO options in its spec.
    run = cli.skill_runs.get(order=0)
    assert json.loads((Path(run.run_dir) / "spec.json").read_text())["ppo"] == {"learning_rate": 3e-4, "mini_epochs": 3}

    # 4. The API: start with `?preset=tiny` (the caller's own) and body options on top.
    response = token_client.post(api_url(fetch_block, "start") + "&preset=tiny", {"seed": 12},
                                 content_type="application/json")
    assert response.status_code == 201, response.json()
    api = TrainingSession.objects.get(pk=response.json()["session_id"])
    assert (api.config["num_envs"], api.config["learning_rate"], api.config["seed"]) == (64, 3e-4, 12)
    assert {k: v for k, v in api.config.items() if k != "seed"} == {k: v for k, v in cli.config.items() if k != "seed"}


def test_a_preset_that_no_longer_validates_says_so_everywhere_and_starts_nothing(
    researcher_client, researcher, fetch_block, token_client
):
    preset = Preset.objects.create(owner=researcher, name="old", options={"num_envs": 99999, "clip_rewards": True})

    response = researcher_client.get(configure_url(fetch_block), {"preset": preset.pk}, headers=FORM)
    body = response.content.decode()
    assert "Preset researcher/old no longer validates" in body
    assert "clip_rewards: unknown option" in body
    assert response.context["form"].errors["num_envs"] == ["must be between 16 and 8192"]

    with pytest.raises(CommandError, match=r"preset researcher/old no longer validates: clip_rewards: unknown option; --num-envs: must be between 16 and 8192"):
        call_command("train", "fetch_block", "--preset", "researcher/old", stdout=io.StringIO())

    response = token_client.post(api_url(fetch_block, "start") + "&preset=old", {}, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("preset researcher/old no longer validates")
    assert response.json()["errors"]["clip_rewards"] == ["unknown option"]
    assert not TrainingSession.objects.exists()


def test_unknown_presets_are_named(token_client, fetch_block):
    response = token_client.post(api_url(fetch_block, "start") + "&preset=nope", {}, content_type="application/json")
    assert response.status_code == 404
    assert response.json()["detail"] == "no preset named 'nope' (yours or shared)"
    with pytest.raises(CommandError, match="no preset named 'nope'"):
        call_command("train", "fetch_block", "--preset", "nope", stdout=io.StringIO())


def test_saving_an_invalid_form_saves_nothing_and_says_why(researcher_client, fetch_block):
    response = researcher_client.post(
        save_url(fetch_block), {**DIALOG, "num_envs": "3", "preset-name": "bad"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 422
    assert "a preset saves valid settings only" in response.content.decode()
    assert not Preset.objects.exists()


def test_sharing_from_the_dialog_needs_the_permission(researcher_client, fetch_block):
    response = researcher_client.post(
        save_url(fetch_block), {**DIALOG, "preset-name": "lab", "preset-shared": "on"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 422
    assert "needs the &#x27;share presets&#x27; permission" in response.content.decode()


def test_presets_page_lists_own_and_shared_and_lets_owners_delete(researcher_client, researcher, other_user, client):
    mine = Preset.objects.create(owner=researcher, name="mine", options={"num_envs": 64})
    shared = Preset.objects.create(owner=other_user, name="theirs", options={"seed": 3}, shared=True)
    Preset.objects.create(owner=other_user, name="private", options={})

    body = researcher_client.get(reverse("training:presets")).content.decode()
    assert "mine" in body and "theirs" in body and "private" not in body

    assert researcher_client.post(reverse("training:preset_delete", args=[shared.pk])).status_code == 403
    assert researcher_client.post(reverse("training:preset_delete", args=[mine.pk])).status_code == 302
    assert not Preset.objects.filter(pk=mine.pk).exists()


def test_preset_api_lists_creates_and_deletes(token_client, researcher, fetch_block):
    response = token_client.post("/api/presets", {"name": "api", "options": {"num_envs": 64}, "task": "fetch_block"},
                                 content_type="application/json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["options"]["num_envs"] == 64 and created["owner"] == "researcher"

    bad = token_client.post("/api/presets", {"name": "x", "options": {"num_envs": 20000}}, content_type="application/json")
    assert bad.status_code == 400 and "num_envs" in bad.json()["errors"]
    worse = token_client.post("/api/presets", {"name": "x", "options": {"num_envs": 64}, "shared": 0},
                              content_type="application/json")
    assert worse.status_code == 400  # JSON types only: 0 is not false

    assert [p["name"] for p in token_client.get("/api/presets").json()] == ["api"]
    assert token_client.delete(f"/api/presets/{created['id']}").status_code == 204
