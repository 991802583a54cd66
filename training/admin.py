"""Admin for training history: sessions, skill runs, events and API tokens, with the clean-up actions.

Everything here is read-only: a status edited in a form would skip the state machine and leave no
event row. Changes go through actions that call the same verbs as the pages and the API
(`services.request_cancel`, `leases.reap_stale_sessions`, `pruning.delete_sessions`), with the
admin user as the actor.

Granting the start permission is done on the user, not here: Users -> the user -> Groups ->
"Researchers" (see `training.permissions`).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.functional import cached_property

from tasks.models import Task
from training import leases, pruning, services
from training.models import (
    METRIC_TAGS,
    LogLine,
    MetricPoint,
    SessionEvent,
    SessionStatus,
    SkillRun,
    TrainingSession,
)
from training.outcomes import Code
from training.signals import notify_changed
from training.tokens import ApiToken

# A task's large JSON columns: no list or inline shows them (each row would carry them otherwise).
TASK_BULK = ("object_config", "hierarchy", "warnings", "description")
SKILL_BULK = ("embedded_spec", "sub_skills", "used_by", "description")
# Counting more rows than this to number the pages costs more than the page: past it the
# paginator says "10,000+" pages' worth (PostgreSQL: the planner's estimate for a whole table).
COUNT_CAP = 10_000


def _skip(prefix: str, fields: tuple[str, ...]) -> list[str]:
    return [f"{prefix}{name}" for name in fields]


class BoundedCountPaginator(Paginator):
    """Counts at most COUNT_CAP rows (`SELECT COUNT(*) FROM (... LIMIT n)`), so a list of a
    million metric points opens as fast as one of a hundred; the last pages of a huge unfiltered
    table are reached by the estimate (PostgreSQL) or by filtering."""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        bounded = queryset.order_by()[:COUNT_CAP + 1].count()
        if bounded <= COUNT_CAP:
            return bounded
        connection = connections[queryset.db]
        if connection.vendor == "postgresql" and not queryset.query.where:
            with connection.cursor() as cursor:
                cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                               [queryset.model._meta.db_table])
                row = cursor.fetchone()
            if row and row[0] and row[0] > COUNT_CAP:
                return int(row[0])
        return COUNT_CAP


class LargeTableAdmin(admin.ModelAdmin):
    """A list over a table that grows with history: no full count, a bounded one for the pages."""

    paginator = BoundedCountPaginator
    show_full_result_count = False
    # A page's cost is its rows' rendering: 50 a page keeps each list well under 100 ms.
    list_per_page = 50


class RobotFilter(admin.SimpleListFilter):
    """Robots from the task table (a thousand rows), never `SELECT DISTINCT` over the history."""

    title = "robot"
    parameter_name = "robot"
    path = "task__robot"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        robots = Task.objects.order_by("robot").values_list("robot", flat=True).distinct()
        return [(robot, robot) for robot in robots]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(**{self.path: self.value()}) if self.value() else queryset


class SkillRobotFilter(RobotFilter):
    path = "skill__task__robot"


class StopReasonFilter(admin.SimpleListFilter):
    """The known failure codes (`outcomes.Code`), without scanning every run for its values."""

    title = "stop reason"
    parameter_name = "stop_reason"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(code.value, code.value) for code in Code]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(stop_reason=self.value()) if self.value() else queryset


class TagFilter(admin.SimpleListFilter):
    """The trainer's metric tags, listed without `SELECT DISTINCT tag` over a million points."""

    title = "tag"
    parameter_name = "tag"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(tag, tag) for tag in METRIC_TAGS]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(tag=self.value()) if self.value() else queryset


class ReadOnlyAdmin(LargeTableAdmin):
    """Viewable and searchable, never edited or added by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields] + list(super().get_readonly_fields(request, obj))


class SkillRunInline(admin.TabularInline):
    model = SkillRun
    extra = 0
    can_delete = False
    fields = ("order", "skill", "status", "attempt", "success_states", "min_success_states", "frames",
              "best_reward", "exit_code", "stop_reason", "run_dir", "started_at", "finished_at")
    readonly_fields = fields
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[SkillRun]:
        # Each row shows its skill as "task/skill": fetched with the rows, not one query each.
        return super().get_queryset(request).select_related("skill__task").defer(
            *_skip("skill__", SKILL_BULK), *_skip("skill__task__", TASK_BULK)
        )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SessionEventInline(admin.TabularInline):
    model = SessionEvent
    extra = 0
    can_delete = False
    fields = ("time", "kind", "skill_run", "from_state", "to_state", "actor", "message")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[SessionEvent]:
        # A row names its skill run ("skill in session N"): fetched with the rows.
        return super().get_queryset(request).select_related("skill_run__skill").defer(
            *_skip("skill_run__skill__", SKILL_BULK)
        )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(TrainingSession)
class TrainingSessionAdmin(ReadOnlyAdmin):
    list_display = ("pk", "task", "status", "stage", "backend", "owner", "created_at", "finished_at",
                    "cancel_requested_by")
    list_filter = ("status", "stage", "backend", RobotFilter, "created_at", "finished_at")
    search_fields = ("=pk", "task__name", "task__robot", "owner__username", "worker_id", "cancel_requested_by")
    # No date_hierarchy: it reads the distinct years (then months, days) of every session on each
    # view; the created_at filter (today, past 7 days, this month, this year) costs nothing.
    inlines = [SkillRunInline, SessionEventInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[TrainingSession]:
        return super().get_queryset(request).select_related("task", "owner").defer(*_skip("task__", TASK_BULK))
    actions = ["cancel_selected", "mark_stale_interrupted", "delete_with_artifacts"]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        # Django's bulk delete would delete active sessions and orphan their run folders on disk.
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # No delete button on a session's page: deleting goes through the action, which lists the
        # folders first and refuses active sessions. The permission itself still gates the action.
        return obj is None and super().has_delete_permission(request)

    @admin.action(description="Cancel selected sessions", permissions=["change"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[TrainingSession]) -> None:
        actor = services.actor_for(request.user)
        asked = 0
        for session in queryset.filter(status__in=SessionStatus.active()):
            services.request_cancel(session, actor=actor)
            asked += 1
        skipped = queryset.count() - asked
        self.message_user(request, f"Cancel requested for {asked} sessions.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} sessions had already ended; left as they were.", messages.WARNING)

    @admin.action(description="Mark stale sessions interrupted", permissions=["change"])
    def mark_stale_interrupted(self, request: HttpRequest, queryset: QuerySet[TrainingSession]) -> None:
        selected = set(queryset.values_list("pk", flat=True))
        reaped: list[TrainingSession] = []
        # The reaper's own staleness rule decides; a session still heartbeating is left running.
        for task in Task.objects.filter(training_sessions__in=queryset.filter(status__in=SessionStatus.active())).distinct():
            reaped += [s for s in leases.reap_stale_sessions(task=task) if s.pk in selected]
        actor = services.actor_for(request.user)
        for session in reaped:
            SessionEvent.objects.create(session=session, kind=SessionEvent.Kind.NOTE, actor=actor,
                                        message="marked interrupted from the admin (no heartbeat)")
            notify_changed(session.pk)
        self.message_user(request, f"Marked {len(reaped)} stale sessions interrupted.", messages.SUCCESS)
        alive = len(selected) - len(reaped)
        if alive:
            self.message_user(
                request, f"{alive} sessions are still heartbeating or had already ended; left as they were.",
                messages.WARNING,
            )

    @admin.action(description="Delete finished sessions with their run folders…", permissions=["delete"])
    def delete_with_artifacts(self, request: HttpRequest, queryset: QuerySet[TrainingSession]) -> HttpResponse | None:
        sessions = list(queryset.select_related("task", "owner").order_by("pk"))
        finished = [s for s in sessions if s.is_terminal]
        active = [s for s in sessions if not s.is_terminal]
        if request.POST.get("confirmed") == "yes":
            report = pruning.delete_sessions(finished)
            # The admin's history of who deleted what (the sessions' own events go with them).
            self.log_deletions(request, [s for s in finished if s.pk in report.deleted])  # type: ignore[arg-type]
            self.message_user(
                request,
                f"Deleted {len(report.deleted)} sessions and {len(report.folders)} run folders "
                f"({pruning.format_bytes(report.bytes)}).",
                messages.SUCCESS,
            )
            for pk, error in report.failed.items():
                self.message_user(request, f"Session {pk} kept: {error}", messages.ERROR)
            if active:
                self.message_user(request, f"{len(active)} active sessions were not deleted.", messages.WARNING)
            return None
        rows = [(s, pruning.folders_of(s)) for s in finished]
        total = sum(f.size for _, folders in rows for f in folders)
        context = {
            **self.admin_site.each_context(request),
            "title": "Delete finished sessions and their run folders?",
            "opts": self.model._meta,
            "rows": [(s, folders, pruning.format_bytes(sum(f.size for f in folders))) for s, folders in rows],
            "active": active,
            "total": pruning.format_bytes(total),
            "selected": [s.pk for s in sessions],
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/training/trainingsession/delete_with_artifacts.html", context)


@admin.register(SkillRun)
class SkillRunAdmin(ReadOnlyAdmin):
    list_display = ("pk", "session", "skill", "status", "attempt", "success_states", "frames", "best_reward",
                    "exit_code", "stop_reason", "started_at")
    list_filter = ("status", StopReasonFilter, SkillRobotFilter, "started_at")
    search_fields = ("=pk", "skill__name", "session__task__name", "=session__pk", "run_dir")

    def get_queryset(self, request: HttpRequest) -> QuerySet[SkillRun]:
        # A row shows its session ("session N of task") and skill ("task/skill"): one join each.
        return super().get_queryset(request).select_related("session__task", "skill__task").defer(
            *_skip("session__task__", TASK_BULK), *_skip("skill__task__", TASK_BULK),
            *_skip("skill__", SKILL_BULK), "session__config", "session__error",
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A run is deleted with its session (the session action removes its folder too).
        return False


@admin.register(SessionEvent)
class SessionEventAdmin(ReadOnlyAdmin):
    list_display = ("time", "session", "kind", "from_state", "to_state", "actor", "message")
    list_filter = ("kind", "time")
    search_fields = ("=session__pk", "actor", "message")

    def get_queryset(self, request: HttpRequest) -> QuerySet[SessionEvent]:
        return super().get_queryset(request).select_related("session__task").defer(
            *_skip("session__task__", TASK_BULK), "session__config", "session__error",
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the audit log


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Tokens are issued by `manage.py create_api_token` (the only time one is shown); deleting revokes."""

    list_display = ("prefix", "user", "name", "created_at", "last_used_at")
    list_filter = ("created_at", "last_used_at")
    search_fields = ("prefix", "user__username", "name")
    list_select_related = ("user",)
    exclude = ("digest",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f for f in super().get_readonly_fields(request, obj) if f != "digest"]


@admin.register(MetricPoint)
class MetricPointAdmin(ReadOnlyAdmin):
    list_display = ("skill_run", "tag", "step", "value", "time")
    list_filter = (TagFilter,)
    search_fields = ("=skill_run__pk",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[MetricPoint]:
        return super().get_queryset(request).select_related("skill_run__skill").defer(*_skip("skill_run__skill__", SKILL_BULK))


@admin.register(LogLine)
class LogLineAdmin(ReadOnlyAdmin):
    list_display = ("skill_run", "seq", "stream", "text")
    list_filter = ("stream",)
    search_fields = ("=skill_run__pk", "text")

    def get_queryset(self, request: HttpRequest) -> QuerySet[LogLine]:
        return super().get_queryset(request).select_related("skill_run__skill").defer(*_skip("skill_run__skill__", SKILL_BULK))
