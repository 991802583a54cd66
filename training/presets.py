"""Training presets: the training form saved under a name, personal or shared with the lab.

One home for what the dialog, `manage.py train --preset NAME` and the API (`?preset=NAME`) share:
finding a preset the way each of them names it, checking it still validates, and turning it (with
any options given on top) into a `TrainingConfig`. A preset stores option values, not a validated
config: every use runs `TrainingConfig.from_data` again, so a preset that no longer validates (an
option since removed, a value out of a narrowed range) fails with `PresetInvalid`, saying which
preset and what is wrong, and nothing starts.

Naming: a shared preset is found by its name alone; a personal one by its owner, or as
`owner/name` (the terminal has no account, so it names personal presets that way).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from tasks.models import Task
from training.config import ConfigError, TrainingConfig
from training.lab_models import Preset

SHARE_PERMISSION = "training.share_preset"
# What a preset keeps of a config: every option a person sets. Not `new_run`: a preset must never
# delete a task's training by surprise (a retry drops it for the same reason); not `max_frames`,
# a benchmark knob.
# Nor a flat baseline (issue 13): it belongs to the one session it is the baseline of.
NOT_SAVED = ("new_run", "max_frames", "flat", "baseline_of")


class PresetNotFound(Exception):
    """No preset of that name that this user may use."""


class PresetInvalid(ConfigError):
    """The preset's own options no longer validate; `errors` maps each option to its messages."""

    def __init__(self, preset: Preset, errors: dict[str, list[str]]) -> None:
        self.preset = preset
        super().__init__(errors)
        self.detail = f"preset {preset} no longer validates: fix or delete it ({self})"


class SharingNotAllowed(Exception):
    """Sharing presets with the lab needs the `training.share_preset` permission (or staff)."""


def can_share(user: Any) -> bool:
    """May `user` share presets with the whole lab? Staff decide who (the permission), staff may."""
    return bool(getattr(user, "is_authenticated", False) and (user.is_staff or user.has_perm(SHARE_PERMISSION)))


def can_change(user: Any, preset: Preset) -> bool:
    """Its owner and staff may change or delete a preset."""
    return bool(getattr(user, "is_authenticated", False) and (user.is_staff or preset.owner_id == user.pk))


def visible_to(user: Any) -> QuerySet[Preset]:
    """The presets `user` may use: their own and the shared ones, by name."""
    presets = Preset.objects.select_related("owner")
    if not getattr(user, "is_authenticated", False):
        return presets.filter(shared=True)
    return presets.filter(Q(shared=True) | Q(owner=user)).order_by("name", "-shared", "pk")


def find(name: str, user: Any | None = None) -> Preset:
    """The preset `name` means to `user`: their own first, then the shared one; `owner/name` names
    a personal preset (its owner's, or anyone's for the terminal, which runs as the server)."""
    owner_name, slash, preset_name = name.rpartition("/")
    found: Preset | None
    if slash:
        found = Preset.objects.select_related("owner").filter(owner__username=owner_name, name=preset_name).first()
        if found is not None and user is not None and not found.shared and not can_change(user, found):
            found = None  # someone else's personal preset
    else:
        found = None
        if user is not None and getattr(user, "is_authenticated", False):
            found = Preset.objects.select_related("owner").filter(owner=user, name=name).first()
        if found is None:
            found = Preset.objects.select_related("owner").filter(shared=True, name=name).first()
    if found is None:
        raise PresetNotFound(f"no preset named {name!r}" + ("" if slash else " (yours or shared)"))
    return found


def options_of(config: TrainingConfig) -> dict[str, Any]:
    """The options a preset saves from a validated config (JSON values; unset PPO options left out)."""
    data = config.to_json()
    return {name: value for name, value in data.items() if name not in NOT_SAVED and value is not None}


def check(preset: Preset, task: Task) -> TrainingConfig:
    """The preset's config for `task`, or `PresetInvalid` saying what no longer validates."""
    try:
        return TrainingConfig.from_data(preset.options, task=task, strict=True)
    except ConfigError as exc:
        raise PresetInvalid(preset, exc.errors) from None


def config_for(
    preset: Preset, task: Task, overrides: Mapping[str, Any] | None = None, *, strict: bool = False
) -> TrainingConfig:
    """The preset's options with `overrides` on top (options given with it: CLI flags, a JSON body).

    The preset itself is checked first, so its own problems are reported as the preset's; then the
    merged options are validated like any others (`strict` for JSON).
    """
    check(preset, task)
    given = {name: value for name, value in (overrides or {}).items() if value is not None}
    merged = {**preset.options, **given}
    if not strict:
        # The preset's values are JSON; a terminal's are text. Both pass the non-strict check.
        return TrainingConfig.from_data(merged, task=task)
    return TrainingConfig.from_data(merged, task=task, strict=True)


def save(
    owner: Any, name: str, config: TrainingConfig, *, shared: bool = False, description: str = ""
) -> tuple[Preset, bool]:
    """Save `config` as the owner's preset `name` (replacing their preset of that name); returns
    (preset, created). Sharing needs the permission; a shared name must be free among shared ones."""
    name = name.strip()
    if not name or len(name) > 100 or "/" in name or any(ord(c) < 32 for c in name) or not _encodable(name):
        raise ValueError("a preset name needs 1-100 characters, no '/' and no control characters")
    if shared and not can_share(owner):
        raise SharingNotAllowed("sharing presets with the lab needs the 'share presets' permission: ask staff")
    options = options_of(config)
    try:
        with transaction.atomic():
            preset, created = Preset.objects.get_or_create(
                owner=owner, name=name,
                defaults={"options": options, "shared": shared, "description": description},
            )
            if not created:
                preset.options, preset.shared, preset.updated_at = options, shared, timezone.now()
                if description:
                    preset.description = description
                preset.save(update_fields=["options", "shared", "updated_at", "description"])
    except IntegrityError:
        raise ValueError(f"a shared preset named {name!r} exists already: choose another name") from None
    return preset, created


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")  # a lone surrogate (from JSON "\\ud800") cannot be stored
    except UnicodeEncodeError:
        return False
    return True


def set_shared(preset: Preset, shared: bool, *, by: Any) -> Preset:
    """Share a preset with the lab or take it back (its owner or staff; sharing needs the permission)."""
    if shared and not can_share(by):
        raise SharingNotAllowed("sharing presets with the lab needs the 'share presets' permission: ask staff")
    try:
        with transaction.atomic():
            Preset.objects.filter(pk=preset.pk).update(shared=shared, updated_at=timezone.now())
    except IntegrityError:
        raise ValueError(f"a shared preset named {preset.name!r} exists already: rename this one first") from None
    preset.refresh_from_db()
    return preset


def problems(preset: Preset, task: Task | None) -> list[str]:
    """What is wrong with a preset for `task` (empty when it validates), one line per problem."""
    if task is None:
        try:
            TrainingConfig.from_data(preset.options, strict=True)
        except ConfigError as exc:
            return _lines(exc.errors)
        return []
    try:
        check(preset, task)
    except PresetInvalid as exc:
        return _lines(exc.errors)
    return []


def _lines(errors: Mapping[str, list[str]]) -> list[str]:
    return [f"{name}: {message}" for name, messages in errors.items() for message in messages]


def summary(preset: Preset) -> str:
    """A short line of what a preset sets, for lists."""
    shown = ("num_envs", "min_success_states", "max_time", "seed", "learning_rate", "entropy_coef",
             "horizon_length", "mini_epochs")
    parts = [f"{name.replace('_', ' ')} {preset.options[name]}" for name in shown if name in preset.options]
    return ", ".join(parts)
