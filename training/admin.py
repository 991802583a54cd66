"""Read-mostly admin for training history: sessions, their skill runs and their event trail."""

from __future__ import annotations

from django.contrib import admin

from training.models import LogLine, MetricPoint, SessionEvent, SkillRun, TrainingSession


class SkillRunInline(admin.TabularInline):
    model = SkillRun
    extra = 0
    can_delete = False
    fields = ("order", "skill", "status", "attempt", "success_states", "min_success_states", "frames",
              "best_reward", "exit_code", "stop_reason", "started_at", "finished_at")
    readonly_fields = fields
    show_change_link = True


class SessionEventInline(admin.TabularInline):
    model = SessionEvent
    extra = 0
    can_delete = False
    fields = ("time", "kind", "skill_run", "from_state", "to_state", "actor", "message")
    readonly_fields = fields


@admin.register(TrainingSession)
class TrainingSessionAdmin(admin.ModelAdmin):
    list_display = ("pk", "task", "status", "stage", "backend", "owner", "created_at", "finished_at")
    list_filter = ("status", "backend")
    search_fields = ("task__name", "task__robot", "worker_id")
    raw_id_fields = ("task", "owner", "current_skill")
    readonly_fields = ("heartbeat_at", "worker_id", "pid", "source_time", "cancel_requested_at",
                       "cancel_requested_by")
    inlines = [SkillRunInline, SessionEventInline]

    # Status changes must go through the state machine (and leave an event row), never a form.
    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(SkillRun)
class SkillRunAdmin(admin.ModelAdmin):
    list_display = ("pk", "session", "skill", "status", "success_states", "frames", "exit_code", "started_at")
    list_filter = ("status",)
    search_fields = ("skill__name", "session__task__name")
    raw_id_fields = ("session", "skill", "start_states_from")

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(SessionEvent)
class SessionEventAdmin(admin.ModelAdmin):
    list_display = ("time", "session", "kind", "from_state", "to_state", "actor", "message")
    list_filter = ("kind",)
    raw_id_fields = ("session", "skill_run")


admin.site.register(MetricPoint, list_display=("skill_run", "tag", "step", "value"), raw_id_fields=("skill_run",))
admin.site.register(LogLine, list_display=("skill_run", "seq", "stream", "text"), raw_id_fields=("skill_run",))
