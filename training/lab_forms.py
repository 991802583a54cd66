"""Forms of the lab pages (issue 14): saving a preset, a new sweep, notification settings, the
queue's staff controls. Each only collects input; the rules live in the domain modules
(`training.presets`, `training.sweeps`, `training.notifications`, `training.queueing`), whose
`ConfigError`s are shown on the fields they name.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.http import HttpRequest

from tasks.models import Task
from training import notifications, presets, sweeps
from training.config import OPTION_LABELS, ConfigError, TrainingConfig
from training.forms import CONFIG_FIELDS, TrainingConfigForm
from training.lab_models import Preset, Sweep
from training.queueing import MOVES

PRESET_PREFIX = "preset"


class PresetSaveForm(forms.Form):
    """The training dialog's "Save as preset": a name, and whether the whole lab may use it."""

    name = forms.CharField(label="Preset name", max_length=100, strip=True)
    shared = forms.BooleanField(label="Share with the lab", required=False)

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"]
        if "/" in name:
            raise forms.ValidationError("A preset name cannot hold '/'.")
        return name


def form_data(options: dict[str, Any]) -> dict[str, str]:
    """A preset's options as the training form posts them (checkboxes: present when on)."""
    data: dict[str, str] = {}
    for name, value in options.items():
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = f"{value:g}" if isinstance(value, float) else str(value)
    return data


def preset_config_form(request: HttpRequest, task: Task) -> tuple[TrainingConfigForm, Preset, list[str]] | None:
    """`?preset=<id>` on the training dialog: the form filled from that preset, with what no longer
    validates shown on its fields (and listed), or None without a usable `preset` parameter."""
    raw = request.GET.get("preset", "")
    if not raw.isdigit():
        return None
    preset = presets.visible_to(request.user).filter(pk=int(raw)).first()
    if preset is None:
        return None
    try:
        config = presets.check(preset, task)
    except presets.PresetInvalid as exc:
        problems = [f"{name}: {message}" for name, messages in exc.errors.items() for message in messages]
        # Bound, so each bad value shows on its field; options the form no longer has are listed.
        data = {name: value for name, value in form_data(preset.options).items() if name in CONFIG_FIELDS}
        form = TrainingConfigForm(data, task=task)
        form.is_valid()
        return form, preset, problems
    return TrainingConfigForm(task=task, initial_config=config), preset, []


class SweepForm(forms.Form):
    """A new sweep: the task, how to choose settings, what varies, the seeds, and the base options."""

    task = forms.ModelChoiceField(queryset=Task.objects.order_by("name", "robot"), label="Task")
    name = forms.CharField(label="Name", max_length=100, required=False)
    method = forms.ChoiceField(label="Method", choices=Sweep.Method.choices, initial=Sweep.Method.GRID)
    metric = forms.ChoiceField(label="Rank by", choices=Sweep.Metric.choices, initial=Sweep.Metric.SUCCESS_RATE)
    seeds = forms.CharField(label="Seeds", initial="1, 2", help_text="Every setting trains once per seed; the "
                            "ranking shows the mean and spread over them.")
    budget = forms.IntegerField(label="Settings to try", min_value=1, max_value=sweeps.MAX_BUDGET, required=False,
                                help_text="Random and automated search only (a grid tries every combination).")
    preset = forms.ModelChoiceField(queryset=Preset.objects.none(), required=False, label="Base preset",
                                    help_text="The options every trial shares; defaults without one.")
    max_time = forms.CharField(label=f"{OPTION_LABELS['max_time']} (min)", required=False, widget=forms.NumberInput(attrs={"step": "any"}))

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["preset"].queryset = presets.visible_to(user)
        for name in sweeps.PARAMS:
            self.fields[f"p_{name}"] = forms.CharField(
                label=OPTION_LABELS[name], required=False,
                help_text=f"Values ‘a, b, c’ or a range ‘low..high’ (add ‘log’); allowed {sweeps.limits_text(name)}.",
            )
        self.space: dict[str, Any] = {}
        self.seed_list: list[int] = []

    def param_fields(self) -> list[forms.BoundField]:
        return [self[f"p_{name}"] for name in sweeps.PARAMS]

    def clean_seeds(self) -> str:
        text: str = self.cleaned_data["seeds"]
        try:
            self.seed_list = [int(part) for part in text.replace(" ", "").split(",") if part]
        except ValueError:
            raise forms.ValidationError("Seeds are whole numbers separated by commas.") from None
        if not self.seed_list:
            raise forms.ValidationError("Give at least one seed.")
        return text

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in sweeps.PARAMS:
            text = (cleaned.get(f"p_{name}") or "").strip()
            if not text:
                continue
            try:
                self.space[name] = sweeps.parse_values(name, text)
            except ValueError as exc:
                self.add_error(f"p_{name}", str(exc))
        if not self.space and not self.errors:
            raise forms.ValidationError("Give values for at least one setting to vary.")
        return cleaned

    def base_options(self) -> dict[str, Any] | TrainingConfig:
        """The preset's options (checked against the task), with the max time typed here on top."""
        preset = self.cleaned_data.get("preset")
        task = self.cleaned_data["task"]
        max_time = (self.cleaned_data.get("max_time") or "").strip()
        overrides = {"max_time": max_time} if max_time else {}
        if preset is not None:
            return presets.config_for(preset, task, overrides)
        return TrainingConfig.from_data(overrides, task=task)

    def add_sweep_errors(self, exc: ConfigError) -> None:
        for field, messages in exc.errors.items():
            target = f"p_{field}" if f"p_{field}" in self.fields else field if field in self.fields else None
            for message in messages:
                self.add_error(target, message if target else f"{field}: {message}")


class NotificationForm(forms.Form):
    email = forms.BooleanField(label="E-mail me", required=False)
    webhook_url = forms.CharField(label="Webhook URL", required=False, max_length=500,
                                  help_text="A Slack incoming webhook, or any URL that accepts a JSON POST.")
    on_completed = forms.BooleanField(label="When a session completes", required=False)
    on_failed = forms.BooleanField(label="When a session fails or is interrupted", required=False)

    def clean_webhook_url(self) -> str:
        try:
            return notifications.check_webhook(self.cleaned_data.get("webhook_url") or "")
        except notifications.InvalidWebhook as exc:
            raise forms.ValidationError(str(exc)) from None


class QueueMoveForm(forms.Form):
    to = forms.ChoiceField(choices=[(m, m) for m in MOVES])


class LimitForm(forms.Form):
    """A session limit: for one user (by name), or everyone's default when `username` is empty."""

    username = forms.CharField(required=False, max_length=150)
    max_running = forms.IntegerField(min_value=0, max_value=1000, label="Sessions at once", required=False)
    remove = forms.BooleanField(required=False)

    def clean_username(self) -> Any:
        name = (self.cleaned_data.get("username") or "").strip()
        if not name:
            return None
        user = get_user_model().objects.filter(username=name).first()
        if user is None:
            raise forms.ValidationError(f"No user named {name!r}.")
        return user
