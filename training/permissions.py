"""Who may do what with training: the one module that decides, for pages, the API and the stream.

The rules (issue 5):

- **view**: any signed-in, active user may view every session and its live progress. The portal
  is a shared lab tool; hiding colleagues' runs would only make people start duplicates.
- **start**: needs the `training.start_training` permission, because a start spends GPU hours.
  Staff and superusers have it implicitly (superusers through Django's `has_perm`, staff by the
  rule below so that "staff manage everything" holds without a group). Everyone else gets it
  from the "Researchers" group (created by a data migration): Django admin -> Users -> the user ->
  Groups -> add "Researchers" (or tick the single permission "Can start training" on the user).
- **cancel** and **resume**: the session's owner and staff. Resuming also starts training, so a
  resumer must be allowed to start too: an owner whose start permission was withdrawn cannot
  keep resuming old sessions.

`can_*` answer a yes/no for templates (show or hide a button). They say only *who* may act, not
whether the session's state allows it (`session.is_active`, ...): the view decides that and
answers 404/409, so a permitted person gets an accurate reason. The `get_*`/`require_*` access
helpers raise `Http404` / `PermissionDenied`, so a view never inlines a permission check and
cannot forget one; django-ninja and Django both turn those into 404/403 responses.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from tasks.models import Task
from training.models import TrainingSession

START_PERMISSION = "training.start_training"
RESEARCHERS_GROUP = "Researchers"


def _user_of(request_or_user: Any) -> Any:
    """Accept a request or a user, so pages, the API and the stream share the same helpers."""
    if isinstance(request_or_user, HttpRequest):
        return request_or_user.user
    return request_or_user


def _signed_in(user: Any) -> bool:
    # An inactive account keeps its rows but must not act, even with a live cookie or token.
    return bool(user is not None and getattr(user, "is_authenticated", False) and getattr(user, "is_active", False))


def _manages(user: Any, session: TrainingSession) -> bool:
    """The session's owner or staff. A session started from the CLI has no owner: staff only."""
    if not _signed_in(user):
        return False
    return bool(user.is_staff or (session.owner_id is not None and session.owner_id == user.pk))


# -- yes/no, for templates and the stream -----------------------------------------------------------
def can_view(user: Any, session: TrainingSession | None = None) -> bool:
    """May `user` see the session (page, API status, live stream)? Any signed-in user may."""
    return _signed_in(user)


def can_start(user: Any, task: Task | None = None) -> bool:
    """May `user` start training `task`? `task` is accepted so a per-task rule can come later."""
    if not _signed_in(user):
        return False
    return bool(user.is_staff or user.has_perm(START_PERMISSION))


def can_cancel(user: Any, session: TrainingSession) -> bool:
    """May `user` cancel `session` (if it is active)? Its owner and staff."""
    return _manages(user, session)


def can_resume(user: Any, session: TrainingSession) -> bool:
    """May `user` resume `session` (if it ended unfinished)? Its owner and staff, with the start permission."""
    return _manages(user, session) and can_start(user, session.task)


# -- access helpers: raise instead of answering ------------------------------------------------------
def get_session_for_viewer(request_or_user: Any, session_id: int, *, task: Task | None = None) -> TrainingSession:
    """The session `session_id` (of `task`, if given) for someone allowed to view it.

    404 if there is no such session (or it belongs to another task), 403 if the user may not view it.
    """
    sessions = TrainingSession.objects.select_related("task", "owner", "current_skill").filter(pk=session_id)
    if task is not None:
        sessions = sessions.filter(task=task)
    session = sessions.first()
    if session is None:
        where = f"task {task.name!r} has no session {session_id}" if task is not None else f"no session {session_id}"
        raise Http404(where)
    if not can_view(_user_of(request_or_user), session):
        raise PermissionDenied("you may not view this session")
    return session


def require_can_start(request_or_user: Any, task: Task) -> Task:
    """`task`, if the user may start it; else 403 naming the permission to ask for."""
    if not can_start(_user_of(request_or_user), task):
        raise PermissionDenied(
            "starting training needs the 'start training' permission: ask an administrator to add "
            f"you to the {RESEARCHERS_GROUP!r} group"
        )
    return task


def require_can_cancel(request_or_user: Any, session: TrainingSession) -> TrainingSession:
    """`session`, if the user may cancel it; else 403."""
    if not can_cancel(_user_of(request_or_user), session):
        raise PermissionDenied("only the session's owner or staff may cancel it")
    return session


def require_can_resume(request_or_user: Any, session: TrainingSession) -> TrainingSession:
    """`session`, if the user may resume it; else 403."""
    user = _user_of(request_or_user)
    if not _manages(user, session):
        raise PermissionDenied("only the session's owner or staff may resume it")
    if not can_start(user, session.task):
        raise PermissionDenied("resuming starts training, which needs the 'start training' permission")
    return session
