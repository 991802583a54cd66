"""training.permissions: who may view, start, cancel and resume, and the access helpers' 404/403."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import RequestFactory

from tests.factories import TINY, one_skill_task
from training import permissions, services

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]


def test_the_migration_creates_the_researchers_group_with_the_start_permission():
    group = Group.objects.get(name=permissions.RESEARCHERS_GROUP)

    assert list(group.permissions.values_list("codename", flat=True)) == ["start_training"]


def test_joining_researchers_grants_start(other_user, reach_beacon):
    assert not permissions.can_start(other_user, reach_beacon)

    other_user.groups.add(Group.objects.get(name=permissions.RESEARCHERS_GROUP))
    fresh = type(other_user).objects.get(pk=other_user.pk)  # has_perm caches per object

    assert permissions.can_start(fresh, reach_beacon)


def test_staff_and_superusers_start_without_the_group(staff_user, django_user_model, reach_beacon):
    admin = django_user_model.objects.create_superuser("boss", "", "pw")

    assert permissions.can_start(staff_user, reach_beacon)
    assert permissions.can_start(admin, reach_beacon)


def test_matrix_of_the_yes_no_helpers(queued, researcher, other_user, other_researcher, staff_user):
    anonymous = AnonymousUser()
    expected = {
        # user: (view, start, cancel, resume)
        "owner": (researcher, True, True, True, True),
        "other": (other_user, True, False, False, False),
        "other researcher": (other_researcher, True, True, False, False),
        "staff": (staff_user, True, True, True, True),
        "anonymous": (anonymous, False, False, False, False),
        "nobody": (None, False, False, False, False),
    }
    for who, (person, view, start, cancel, resume) in expected.items():
        got = (
            permissions.can_view(person, queued),
            permissions.can_start(person, queued.task),
            permissions.can_cancel(person, queued),
            permissions.can_resume(person, queued),
        )
        assert got == (view, start, cancel, resume), who


def test_an_inactive_owner_may_do_nothing(queued, researcher):
    researcher.is_active = False

    assert not permissions.can_view(researcher, queued)
    assert not permissions.can_cancel(researcher, queued)


def test_a_session_without_owner_is_for_staff_only(reach_beacon, researcher, staff_user):
    session = services.start_session(reach_beacon, TINY)  # from the CLI: no owner

    assert not permissions.can_cancel(researcher, session)
    assert permissions.can_cancel(staff_user, session)


def test_an_owner_without_the_start_permission_may_cancel_but_not_resume(cancelled, researcher):
    researcher.groups.clear()
    fresh = type(researcher).objects.get(pk=researcher.pk)

    assert permissions.can_cancel(fresh, cancelled)
    assert not permissions.can_resume(fresh, cancelled)
    with pytest.raises(PermissionDenied, match="start training"):
        permissions.require_can_resume(fresh, cancelled)


def test_get_session_for_viewer_takes_a_request_or_a_user(queued, other_user):
    request = RequestFactory().get("/")
    request.user = other_user

    assert permissions.get_session_for_viewer(request, queued.pk) == queued
    assert permissions.get_session_for_viewer(other_user, queued.pk) == queued


def test_get_session_for_viewer_is_404_for_a_missing_or_other_tasks_session(queued, researcher):
    other_task = one_skill_task("elsewhere")

    with pytest.raises(Http404):
        permissions.get_session_for_viewer(researcher, queued.pk + 1000)
    with pytest.raises(Http404):
        permissions.get_session_for_viewer(researcher, queued.pk, task=other_task)


def test_get_session_for_viewer_is_403_for_anonymous(queued):
    with pytest.raises(PermissionDenied):
        permissions.get_session_for_viewer(AnonymousUser(), queued.pk)


def test_require_helpers_raise_403_and_return_what_they_guard(queued, researcher, other_user):
    assert permissions.require_can_cancel(researcher, queued) is queued
    assert permissions.require_can_start(researcher, queued.task) is queued.task
    with pytest.raises(PermissionDenied, match="owner or staff"):
        permissions.require_can_cancel(other_user, queued)
    with pytest.raises(PermissionDenied, match="Researchers"):
        permissions.require_can_start(other_user, queued.task)
