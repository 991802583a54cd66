"""The session page's flat-baseline part (issue 13): "Train flat baseline" on a finished hierarchical
session starts one with its budget and seed; the baseline links to the comparison of the two."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.urls import reverse

from training.config import TrainingConfig
from training.models import SessionStatus, SkillRun, SkillStatus, TrainingSession


def test_train_flat_baseline_button_and_compare_link(researcher_client: Client, fetch_block: Any,
                                                      researcher: Any) -> None:
    hierarchical = TrainingSession.objects.create(
        task=fetch_block, owner=researcher, config=TrainingConfig(seed=9, num_envs=64).to_json(), backend="embedded",
        status=SessionStatus.COMPLETED,
    )
    for order, skill in enumerate(fetch_block.skills.order_by("order")):
        SkillRun.objects.create(session=hierarchical, skill=skill, order=order, status=SkillStatus.COMPLETED, frames=1000)
    media = reverse("training:session_media", args=[hierarchical.pk])
    assert "Train flat baseline" in researcher_client.get(media).content.decode()

    response = researcher_client.post(reverse("training:train_flat", args=[hierarchical.pk]))
    flat = TrainingSession.objects.exclude(pk=hierarchical.pk).get()
    assert response.status_code == 302 and response["Location"] == reverse("training:session", args=[flat.pk])
    assert (flat.config["flat"], flat.config["baseline_of"], flat.config["seed"], flat.config["max_frames"]) == (
        True, hierarchical.pk, 9, 3000)
    assert flat.config["num_envs"] == 64 and flat.owner == researcher
    page = researcher_client.get(reverse("training:session_media", args=[flat.pk])).content.decode()
    assert f'href="/training/compare/?sessions={hierarchical.pk},{flat.pk}"' in page and "Compare with hierarchical" in page
    assert "Train flat baseline" not in page  # not of a baseline
    listing = researcher_client.get(media).content.decode()
    assert f"?sessions={hierarchical.pk},{flat.pk}" in listing  # the hierarchical session lists its baselines


def test_train_flat_baseline_needs_the_start_permission(user_client: Client, fetch_block: Any, user: Any) -> None:
    session = TrainingSession.objects.create(
        task=fetch_block, owner=user, config=TrainingConfig().to_json(), backend="embedded", status=SessionStatus.COMPLETED,
    )
    assert "Train flat baseline" not in user_client.get(reverse("training:session_media", args=[session.pk])).content.decode()
    assert user_client.post(reverse("training:train_flat", args=[session.pk])).status_code == 403
    assert TrainingSession.objects.count() == 1
