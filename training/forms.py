"""Forms of the training pages.

`TrainingConfigForm` is the configuration dialog. It only collects the options; every rule
(ranges, the backend's defaults, what a whole number is) is `TrainingConfig.from_data`'s, the same
check the API and `manage.py train` run, and its `ConfigError` messages are shown on their fields.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from tasks.models import Task
from training.config import (
    BACKENDS,
    BOOLEAN_OPTIONS,
    CLI_FLAGS,
    MAX_TIME_LIMIT,
    MIN_STEPS,
    NUM_ENVS,
    OPTION_LABELS,
    ConfigError,
    TrainingConfig,
)

# The options a person sets, in the dialog's order. `max_frames` is left out on purpose: it is a
# benchmark/test knob, not a product option.
CONFIG_FIELDS = (
    "backend", "max_time", "min_success_states", "num_envs", "seed",
    "new_run", "skip_complete", "headless", "video", "video_interval", "video_length",
    "min_steps_primitive", "min_steps_composite",
    # PPO hyper-parameters (issue 14; empty: each skill's own).
    "learning_rate", "entropy_coef", "horizon_length", "mini_epochs",
)
ADVANCED_FIELDS = (
    "min_steps_primitive", "min_steps_composite", "learning_rate", "entropy_coef", "horizon_length", "mini_epochs",
)
# Shown after the value in the dialog.
UNITS = {"max_time": "min", "num_envs": "envs", "video_interval": "steps", "video_length": "steps",
         "min_steps_primitive": "frames", "min_steps_composite": "frames"}


def _envs_help() -> str:
    ranges = "; ".join(
        f"{'Isaac Lab' if name == 'isaaclab' else 'embedded'} {low:,}–{high:,}, default {default:,}"
        for name, (default, low, high) in NUM_ENVS.items()
    )
    return f"Simulated copies trained side by side. More is faster but needs more memory ({ranges})."


def _number(attrs: dict[str, Any] | None = None) -> forms.NumberInput:
    return forms.NumberInput(attrs={"inputmode": "numeric", **(attrs or {})})


class TrainingConfigForm(forms.Form):
    """Every `manage.py train` option, with the backend's defaults; `config` is set once valid."""

    backend = forms.ChoiceField(
        label=OPTION_LABELS["backend"], choices=Task.Backend.choices,
        help_text="Where skills train: the embedded 2-D simulator on this machine's CPU, or Isaac Lab on a GPU.",
    )
    max_time = forms.CharField(
        label=OPTION_LABELS["max_time"], widget=_number({"step": "any", "min": "0", "max": MAX_TIME_LIMIT}),
        help_text="A skill still short of its success states after this many minutes stops and fails.",
    )
    min_success_states = forms.CharField(
        label=OPTION_LABELS["min_success_states"], widget=_number({"min": 1}),
        help_text="A skill is complete once this many states where it succeeded are saved.",
    )
    num_envs = forms.CharField(label=OPTION_LABELS["num_envs"], widget=_number(), help_text=_envs_help())
    seed = forms.CharField(
        label=OPTION_LABELS["seed"], widget=_number({"min": 0}),
        help_text="The same seed and settings give a reproducible run.",
    )
    new_run = forms.BooleanField(
        label=OPTION_LABELS["new_run"], required=False,
        help_text="Delete this task's previous training data (success states, policies, runs) first.",
    )
    skip_complete = forms.BooleanField(
        label=OPTION_LABELS["skip_complete"], required=False,
        help_text="Skills that already have enough success states and a policy are not trained again.",
    )
    headless = forms.BooleanField(
        label=OPTION_LABELS["headless"], required=False, help_text="Run the simulator without a window (faster).",
    )
    video = forms.BooleanField(
        label=OPTION_LABELS["video"], required=False, help_text="Save short videos of the policy while it trains.",
    )
    # Not required: with videos off the fields are disabled and not sent (the defaults are kept).
    video_interval = forms.CharField(
        label=OPTION_LABELS["video_interval"], required=False, widget=_number({"min": 1}), help_text="Steps between two recorded videos.",
    )
    video_length = forms.CharField(
        label=OPTION_LABELS["video_length"], required=False, widget=_number({"min": 1}), help_text="Steps in each recorded video.",
    )
    min_steps_primitive = forms.CharField(
        label=OPTION_LABELS["min_steps_primitive"], widget=_number({"min": 0}),
        help_text="A primitive skill trains at least this many frames, even with enough success states.",
    )
    min_steps_composite = forms.CharField(
        label=OPTION_LABELS["min_steps_composite"], widget=_number({"min": 0}),
        help_text="The same for composite skills, which learn over their frozen sub-skills.",
    )
    # Empty means "the skill's own" (None), so these never force a value on anyone.
    learning_rate = forms.CharField(
        label=OPTION_LABELS["learning_rate"], required=False, empty_value=None, widget=_number({"step": "any", "min": 0}),
        help_text="PPO's learning rate for every skill; empty keeps each skill's own (1e-3 by default).",
    )
    entropy_coef = forms.CharField(
        label=OPTION_LABELS["entropy_coef"], required=False, empty_value=None, widget=_number({"step": "any", "min": 0}),
        help_text="Rewards exploration; empty keeps each skill's own (0 primitives, 0.01 composites).",
    )
    horizon_length = forms.CharField(
        label=OPTION_LABELS["horizon_length"], required=False, empty_value=None, widget=_number({"min": 1}),
        help_text="Steps each environment collects per update; empty keeps each skill's own (16 / 8).",
    )
    mini_epochs = forms.CharField(
        label=OPTION_LABELS["mini_epochs"], required=False, empty_value=None, widget=_number({"min": 1}),
        help_text="Passes over each batch per update; empty keeps each skill's own (5 / 4).",
    )

    def __init__(self, *args: Any, task: Task, initial_config: TrainingConfig | None = None, **kwargs: Any) -> None:
        self.task = task
        self.config: TrainingConfig | None = None
        base = initial_config or TrainingConfig.from_data({}, task=task)
        self._base = base
        initial = {name: getattr(base, name) for name in CONFIG_FIELDS}
        initial["max_time"] = f"{base.max_time:g}"  # 180, not 180.0
        kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        self.fields["max_time"].widget.attrs["placeholder"] = "180"
        self._set_env_range(self.selected_backend())
        if not settings.GENHRL_ISAACLAB_ROOT:
            self.fields["backend"].help_text += " Isaac Lab needs GENHRL_ISAACLAB_ROOT on the server."

    def selected_backend(self) -> str:
        value = self.data.get("backend") if self.is_bound else self.initial.get("backend")
        return value if value in BACKENDS else TrainingConfig.from_data({}, task=self.task).backend

    def _set_env_range(self, backend: str) -> None:
        default, low, high = NUM_ENVS[backend]
        self.fields["num_envs"].widget.attrs.update({"min": low, "max": high, "step": 1, "placeholder": default})
        # training.js moves untouched values to the other backend's defaults when it is chosen;
        # the server still decides (TrainingConfig.from_data).
        for name in BACKENDS:
            env_default, env_low, env_high = NUM_ENVS[name]
            self.fields["num_envs"].widget.attrs[f"data-default-{name}"] = env_default
            self.fields["num_envs"].widget.attrs[f"data-range-{name}"] = f"{env_low},{env_high}"
            for kind in ("primitive", "composite"):
                self.fields[f"min_steps_{kind}"].widget.attrs[f"data-default-{name}"] = MIN_STEPS[name][kind]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        options = {name: cleaned[name] for name in CONFIG_FIELDS if name in cleaned}
        for name in ("video_interval", "video_length"):
            if options.get(name) in ("", None):
                options.pop(name, None)  # not sent (videos off): the default
        try:
            self.config = TrainingConfig.from_data(options, task=self.task)
        except ConfigError as exc:
            self.add_config_errors(exc)
        return cleaned

    def add_config_errors(self, exc: ConfigError) -> None:
        """Show each message on its field (or above the form), e.g. from `start_session`."""
        for field, messages in exc.errors.items():
            for message in messages:
                self.add_error(field if field in self.fields else None, message)
        self.config = None

    def best_effort_config(self) -> TrainingConfig:
        """The valid options with defaults for the rest: what the estimate is computed from."""
        if self.config is not None:
            return self.config
        if not self.is_bound:
            return self._base  # the settings it was opened with (a preset, an earlier session's)
        cleaned = getattr(self, "cleaned_data", {})
        options = {k: v for k, v in cleaned.items() if k in CONFIG_FIELDS and k not in self.errors}
        try:
            return TrainingConfig.from_data(options, task=self.task)
        except ConfigError:
            return TrainingConfig.from_data({}, task=self.task)

    # -- layout helpers for the template ----------------------------------------------------------
    def core_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("max_time", "min_success_states", "num_envs", "seed")]

    def option_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("new_run", "skip_complete", "headless")]

    def video_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("video_interval", "video_length")]

    def advanced_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ADVANCED_FIELDS]

    def advanced_open(self) -> bool:
        """Keep "Advanced" open when it holds an error or a value the person changed."""
        return any(self[name].errors for name in ADVANCED_FIELDS) or (
            self.is_bound and any(str(self.data.get(name, "")) != _shown(self.initial.get(name)) for name in ADVANCED_FIELDS)
        )


def _shown(value: Any) -> str:
    """An initial value as the field shows it (an unset option is an empty field)."""
    return "" if value is None else str(value)


def cli_command(task: Task, config: TrainingConfig) -> str:
    """The `manage.py train` line that starts the same session from a terminal."""
    parts = ["python manage.py train", task.name, "--robot", task.robot]
    if config.backend != TrainingConfig.from_data({}, task=task).backend:
        parts += ["--backend", config.backend]
    defaults = TrainingConfig.defaults(config.backend)
    for name, flag in CLI_FLAGS.items():
        if name in ("backend", "max_frames") or name in BOOLEAN_OPTIONS:
            continue  # the backend above, the booleans below; max_frames is not a product option
        value = getattr(config, name)
        if value != getattr(defaults, name):
            parts += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    for name in BOOLEAN_OPTIONS:
        value = getattr(config, name)
        if value != getattr(defaults, name):
            flag = CLI_FLAGS[name]
            parts.append(flag if value else f"--no-{flag[2:]}")
    return " ".join(parts)


class BulkTrainForm(forms.Form):
    """The task list's "Train selected": the ids of the chosen tasks."""

    MAX_TASKS = 100

    task = forms.TypedMultipleChoiceField(coerce=int, error_messages={"required": "Select at least one task."})
    # Off: a task whose skills are all trained is reported as "nothing to train" and not queued.
    retrain = forms.BooleanField(required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["task"].choices = [(pk, pk) for pk in self._posted_ids()]

    def _posted_ids(self) -> list[int]:
        # Choices are the posted ids that exist, so a stale page gives a clear message, not a 500.
        raw = self.data.getlist("task") if hasattr(self.data, "getlist") else []
        ids = {int(value) for value in raw if str(value).isdigit()}
        return list(Task.objects.filter(pk__in=ids).values_list("pk", flat=True)[: self.MAX_TASKS])

    def tasks(self) -> list[Task]:
        return list(Task.objects.filter(pk__in=self.cleaned_data["task"]).order_by("name", "robot"))
