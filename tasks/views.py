"""Pages of the portal: dashboard, task list, task detail, and the staff "Rescan" action.

Every page requires a login (LoginRequiredMiddleware). A view renders its full page, or for an
htmx request the partial it swaps (`tasks/_task_results.html`), from the same context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django_htmx.middleware import HtmxDetails

from tasks import importer
from tasks.forms import TaskFilterForm
from tasks.genhrl import GenHRLError
from tasks.models import Skill, Task
from tasks.scene import scene_map, summarise_object_config
from training.queries import dashboard_context, latest_session_annotations, task_training_context

TASKS_PER_PAGE = 24
RECENT_TASKS = 6
# Columns a task card shows: the list never loads the big JSON columns (hierarchy, object_config).
CARD_FIELDS = (
    "name", "robot", "backend", "description", "skill_count", "levels", "warnings", "imported_at", "updated_at",
)
# Warnings of a rescan shown as messages; every task's page lists all of its own.
RESCAN_WARNINGS_SHOWN = 5
# A hierarchy deeper than this is corrupt (GenHRL generates at most 3 levels); stop drawing it.
MAX_TREE_DEPTH = 16


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """403 for a signed-in user who is not staff (anonymous users never get here: the middleware
    sends them to the login page)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_staff:
            raise PermissionDenied("Only staff can do this.")
        return view(request, *args, **kwargs)

    return wrapper


def _wants_partial(request: HtmxHttpRequest) -> bool:
    # A history restore (back button after a cache miss) needs the whole page.
    return bool(request.htmx) and not request.htmx.boosted and not request.htmx.history_restore_request


def _robot_names() -> list[str]:
    return list(Task.objects.order_by("robot").values_list("robot", flat=True).distinct())


@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    totals = Task.objects.aggregate(
        tasks=Count("id"), robots=Count("robot", distinct=True), skills=Sum("skill_count")
    )
    context = {
        "task_count": totals["tasks"],
        "robot_count": totals["robots"],
        "skill_count": totals["skills"] or 0,
        "recent_tasks": Task.objects.only(*CARD_FIELDS).order_by("-updated_at", "-id")[:RECENT_TASKS],
        "isaaclab_path": settings.GENHRL_ISAACLAB_PATH,
        # Active sessions and recent results (a live card: it polls training:dashboard_card).
        **dashboard_context(),
    }
    return render(request, "tasks/dashboard.html", context)


@require_GET
def task_list(request: HtmxHttpRequest) -> HttpResponse:
    form = TaskFilterForm(request.GET, robots=_robot_names())
    filters = form.filters()
    # Each card shows its task's latest training status: one subquery, not a query per card.
    tasks = filters.apply(Task.objects.only(*CARD_FIELDS).annotate(**latest_session_annotations()))
    page = Paginator(tasks, TASKS_PER_PAGE).get_page(filters.page)
    context = {"form": form, "filters": filters, "page": page, "tasks": page.object_list}
    template = "tasks/_task_results.html" if _wants_partial(request) else "tasks/task_list.html"
    response = render(request, template, context)
    # The same URL answers with a page or a fragment: caches must keep them apart.
    patch_vary_headers(response, ("HX-Request",))
    return response


@require_GET
def task_detail(request: HttpRequest, robot: str, name: str) -> HttpResponse:
    task = get_object_or_404(Task, robot=robot, name=name)
    skills = list(task.skills.all())
    by_name = {skill.name: skill for skill in skills}  # case-sensitive: GenHRL has case twins
    scene = summarise_object_config(task.object_config)
    context = {
        "task": task,
        "skills": skills,
        "skill_rows": [_skill_row(skill, by_name) for skill in skills],
        "tree": _skill_tree(task, by_name),
        "undefined_count": sum(not skill.defined for skill in skills),
        "primitive_count": sum(skill.is_primitive for skill in skills),
        "scene": scene,
        "scene_map": scene_map(scene),
        # The training panel and each skill's status badge in the tree (training.queries.skill_status_rows).
        **task_training_context(task),
    }
    return render(request, "tasks/task_detail.html", context)


@staff_required
@require_POST
def rescan(request: HttpRequest) -> HttpResponse:
    """Re-import every task under GENHRL_ISAACLAB_PATH and report what changed."""
    root = settings.GENHRL_ISAACLAB_PATH
    if not root:
        messages.error(
            request,
            "Rescan needs GENHRL_ISAACLAB_PATH: set it to the Isaac Lab checkout (or a <Robot>_generated "
            "folder) holding your GenHRL tasks, and restart the portal.",
        )
        return redirect(_next_url(request))
    try:
        report = importer.import_path(root)
    except (GenHRLError, OSError) as exc:
        messages.error(request, f"Rescan failed: {exc}")
    else:
        _report_messages(request, report)
    return redirect(_next_url(request))


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return "task_list"


def _report_messages(request: HttpRequest, report: importer.ImportReport) -> None:
    """One line with the counts, one per failed task, and the first few warnings."""
    level = messages.SUCCESS if report.ok else messages.WARNING
    messages.add_message(request, level, f"Rescanned {report.path}: {report.summary()}.")
    for result in report.failed:
        messages.error(request, f"{result.label} was not imported: {result.error}")
    warnings = [f"{result.label}: {warning}" for result in report.results for warning in result.warnings]
    for warning in warnings[:RESCAN_WARNINGS_SHOWN]:
        messages.warning(request, warning)
    if len(warnings) > RESCAN_WARNINGS_SHOWN:
        more = len(warnings) - RESCAN_WARNINGS_SHOWN
        messages.warning(request, f"…and {more} more warning{pluralize(more)}, shown on each task's page.")


@dataclass(frozen=True)
class SkillRef:
    """A skill named by another skill: `skill` is None when the name is never defined."""

    name: str
    skill: Skill | None


@dataclass(frozen=True)
class SkillRow:
    skill: Skill
    sub_skills: list[SkillRef]
    used_by: list[SkillRef]


def _skill_row(skill: Skill, by_name: dict[str, Skill]) -> SkillRow:
    def refs(names: object) -> list[SkillRef]:
        return [SkillRef(str(n), by_name.get(str(n))) for n in names] if isinstance(names, list) else []

    return SkillRow(skill, refs(skill.sub_skills), refs(skill.used_by))


@dataclass
class TreeNode:
    name: str
    description: str
    skill: Skill | None
    depth: int = 0
    children: list[TreeNode] = field(default_factory=list)
    truncated: bool = False  # children not drawn: a cycle, or deeper than MAX_TREE_DEPTH

    @property
    def undefined(self) -> bool:
        return self.skill is None or not self.skill.defined


def _skill_tree(task: Task, by_name: dict[str, Skill]) -> TreeNode | None:
    """The task's hierarchy with each node joined to its Skill row.

    Drawn from `Task.hierarchy` (the library's `structure`); a list is GenHRL's two-level form,
    under a virtual root named after the task. Without a usable hierarchy, the tree is rebuilt
    from the skills' `sub_skills`, starting at the root skill.
    """
    hierarchy = task.hierarchy
    if isinstance(hierarchy, list):
        hierarchy = {"name": task.root_skill or task.name, "children": hierarchy}
    if isinstance(hierarchy, dict) and isinstance(hierarchy.get("name"), str):
        return _tree_from_structure(hierarchy, by_name, ())
    root = by_name.get(task.root_skill)
    return _tree_from_skills(root, by_name, ()) if root else None


def _tree_from_structure(node: dict[str, Any], by_name: dict[str, Skill], path: tuple[str, ...]) -> TreeNode:
    name = str(node.get("name", ""))
    skill = by_name.get(name)
    description = node.get("description") or (skill.description if skill else "")
    tree = TreeNode(name=name, description=str(description), skill=skill, depth=len(path))
    children = [c for c in node.get("children") or [] if isinstance(c, dict)]
    if children and (name in path or len(path) >= MAX_TREE_DEPTH):
        tree.truncated = True
        return tree
    tree.children = [_tree_from_structure(child, by_name, (*path, name)) for child in children]
    return tree


def _tree_from_skills(skill: Skill, by_name: dict[str, Skill], path: tuple[str, ...]) -> TreeNode:
    tree = TreeNode(name=skill.name, description=skill.description, skill=skill, depth=len(path))
    names = [str(n) for n in skill.sub_skills] if isinstance(skill.sub_skills, list) else []
    if names and (skill.name in path or len(path) >= MAX_TREE_DEPTH):
        tree.truncated = True
        return tree
    for child_name in names:
        child = by_name.get(child_name)
        if child is None:
            tree.children.append(TreeNode(name=child_name, description="", skill=None, depth=len(path) + 1))
        else:
            tree.children.append(_tree_from_skills(child, by_name, (*path, skill.name)))
    return tree
