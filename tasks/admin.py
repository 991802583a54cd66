"""Admin for imported tasks and skills.

Tasks come from GenHRL's files: the admin is for looking and for small fixes; a re-import
("Rescan", `manage.py import_tasks`) overwrites what the files define.
"""

from __future__ import annotations

from django.contrib import admin

from tasks.models import Skill, Task


class SkillInline(admin.TabularInline):
    model = Skill
    fields = ("order", "name", "level", "is_primitive", "defined", "sub_skills", "used_by")
    readonly_fields = ("sub_skills", "used_by")
    ordering = ("order",)
    extra = 0
    show_change_link = True


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ("name", "robot", "backend", "skill_count", "levels", "warning_count", "updated_at")
    list_filter = ("robot", "backend", "levels", "imported_at")
    search_fields = ("name", "description", "robot")
    date_hierarchy = "imported_at"
    readonly_fields = ("imported_at", "updated_at", "skill_count", "levels")
    fieldsets = (
        (None, {"fields": ("name", "robot", "backend", "root_skill", "description")}),
        ("Source", {"fields": ("source_path", "robot_path", "imported_at", "updated_at")}),
        ("Structure", {"fields": ("skill_count", "levels", "hierarchy", "object_config", "warnings")}),
    )
    inlines = (SkillInline,)

    @admin.display(description="warnings")
    def warning_count(self, task: Task) -> int:
        return len(task.warnings) if isinstance(task.warnings, list) else 0


@admin.register(Skill)
class SkillAdmin(admin.ModelAdmin):
    list_display = ("name", "task", "robot", "level", "is_primitive", "order", "defined")
    list_filter = ("is_primitive", "level", "defined", "task__robot", "task__backend")
    search_fields = ("name", "description", "task__name")
    list_select_related = ("task",)
    autocomplete_fields = ("task",)
    ordering = ("task__name", "task__robot", "order")

    @admin.display(description="robot", ordering="task__robot")
    def robot(self, skill: Skill) -> str:
        return skill.task.robot
