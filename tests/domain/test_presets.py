"""Presets: saved training options, personal or shared with the lab; checked again on every use."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from training import presets
from training.config import TrainingConfig
from training.lab_models import Preset

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]


def grant_sharing(user):
    user.user_permissions.add(Permission.objects.get(codename="share_preset"))
    return type(user).objects.get(pk=user.pk)  # a fresh object: permissions are cached per object


def test_a_preset_saves_what_a_person_sets_but_never_new_run(researcher, fetch_block):
    config = TrainingConfig.from_data({"num_envs": 64, "new_run": True, "learning_rate": 3e-4}, task=fetch_block)

    preset, created = presets.save(researcher, "quick", config)

    assert created and not preset.shared
    assert preset.options["num_envs"] == 64 and preset.options["learning_rate"] == 3e-4
    assert "new_run" not in preset.options and "max_frames" not in preset.options
    assert "entropy_coef" not in preset.options  # unset PPO options stay the skills' own
    assert presets.check(preset, fetch_block) == config.with_changes(new_run=False)


def test_saving_again_replaces_the_owners_preset_of_that_name(researcher, fetch_block):
    presets.save(researcher, "quick", TrainingConfig.from_data({"num_envs": 64}, task=fetch_block))
    preset, created = presets.save(researcher, "quick", TrainingConfig.from_data({"num_envs": 128}, task=fetch_block))

    assert not created
    assert Preset.objects.get().options["num_envs"] == 128


def test_sharing_needs_the_permission_staff_grant(researcher, staff_user, fetch_block):
    config = TrainingConfig.from_data({}, task=fetch_block)
    with pytest.raises(presets.SharingNotAllowed):
        presets.save(researcher, "lab-default", config, shared=True)

    preset, _ = presets.save(grant_sharing(researcher), "lab-default", config, shared=True)
    staff_preset, _ = presets.save(staff_user, "staff-one", config, shared=True)  # staff may share

    assert preset.shared and staff_preset.shared


def test_personal_presets_are_private_and_shared_ones_found_by_name(researcher, other_user, staff_user, fetch_block):
    config = TrainingConfig.from_data({}, task=fetch_block)
    mine, _ = presets.save(researcher, "mine", config)
    lab, _ = presets.save(staff_user, "lab", config, shared=True)

    assert set(presets.visible_to(other_user)) == {lab}
    assert set(presets.visible_to(researcher)) == {mine, lab}
    assert presets.find("lab", other_user) == lab
    assert presets.find("mine", researcher) == mine
    with pytest.raises(presets.PresetNotFound):
        presets.find("mine", other_user)
    with pytest.raises(presets.PresetNotFound):
        presets.find("researcher/mine", other_user)
    # The terminal (no account) runs as the server: it names personal presets OWNER/NAME.
    assert presets.find("researcher/mine") == mine
    assert presets.find("lab") == lab


def test_own_preset_wins_over_a_shared_one_of_the_same_name(researcher, staff_user, fetch_block):
    config = TrainingConfig.from_data({}, task=fetch_block)
    lab, _ = presets.save(staff_user, "fast", config, shared=True)
    mine, _ = presets.save(researcher, "fast", config)

    assert presets.find("fast", researcher) == mine
    assert presets.find("fast") == lab


def test_two_shared_presets_cannot_have_one_name(staff_user, django_user_model, fetch_block):
    other_staff = django_user_model.objects.create_user("boss", is_staff=True)
    config = TrainingConfig.from_data({}, task=fetch_block)
    presets.save(staff_user, "fast", config, shared=True)
    with pytest.raises(ValueError, match="shared preset named 'fast' exists"):
        presets.save(other_staff, "fast", config, shared=True)


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        ({"num_envs": 99999}, "num_envs", "must be between 16 and 8192"),
        ({"clip_rewards": True}, "clip_rewards", "unknown option"),  # an option since removed
        ({"learning_rate": "0.1"}, "learning_rate", "must be a number"),
    ],
)
def test_a_preset_that_no_longer_validates_says_so(researcher, fetch_block, options, field, message):
    preset = Preset.objects.create(owner=researcher, name="old", options={"num_envs": 64, **options})

    with pytest.raises(presets.PresetInvalid) as caught:
        presets.config_for(preset, fetch_block, {"seed": "3"})

    assert caught.value.errors[field] == [message]
    assert "preset researcher/old no longer validates" in caught.value.detail
    assert presets.problems(preset, fetch_block) == [f"{field}: {message}"]


def test_options_given_with_a_preset_go_on_top(researcher, fetch_block):
    preset, _ = presets.save(researcher, "base", TrainingConfig.from_data({"num_envs": 64, "seed": 5}, task=fetch_block))

    config = presets.config_for(preset, fetch_block, {"seed": "9", "max_time": None})

    assert (config.num_envs, config.seed) == (64, 9)
