"""Telling people when their sessions end: e-mail and a webhook (JSON, Slack-compatible `text`).

An outbox: when a session of an opted-in user completes or fails, `enqueue_due` writes one
`Notification` row per channel; `deliver_due` sends what is due. Both run in each worker's
notifier thread (`engine/notifier.py`), never in a supervisor's loop, so a slow or failing mail
server or webhook can never delay or stop training. A delivery is claimed first with a conditional
UPDATE (two workers never send the same message), retried GENHRL_NOTIFY_ATTEMPTS times with
exponential backoff, and each failure is logged and kept on the row (`last_error`) for the user's
notification page.

E-mail goes through Django's e-mail settings (EMAIL_HOST, ... from the environment: README).
A webhook is POSTed a JSON object whose `text` is what Slack's incoming webhooks show; the
other keys (`event`, `session`) are for scripts. Redirects are not followed and only http(s) URLs
are accepted. Links point at GENHRL_PUBLIC_URL.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from training.lab_models import Notification, NotificationSettings
from training.models import SessionStatus, TrainingSession

logger = logging.getLogger(__name__)

# Which session endings each setting announces (an interrupted session did not finish: a failure
# to its owner, who will want to resume it).
COMPLETED = (SessionStatus.COMPLETED,)
FAILED = (SessionStatus.FAILED, SessionStatus.INTERRUPTED)
# Sessions that ended longer ago than this are never announced (a notifier that was down for days
# does not flood anyone when it comes back).
WINDOW = timedelta(days=1)
CLAIM_SECONDS = 300  # a sender that died mid-send leaves its claim; after this it is retried


class InvalidWebhook(ValueError):
    """Not a URL the portal will post to."""


def attempts_allowed() -> int:
    return int(getattr(settings, "GENHRL_NOTIFY_ATTEMPTS", 4))


def backoff(attempt: int) -> timedelta:
    """Wait after the `attempt`-th failure: GENHRL_NOTIFY_BACKOFF_SECONDS, then 4x, 16x ..."""
    base = float(getattr(settings, "GENHRL_NOTIFY_BACKOFF_SECONDS", 30))
    return timedelta(seconds=base * 4 ** max(0, attempt - 1))


# -- settings -------------------------------------------------------------------------------------
def settings_for(user: Any) -> NotificationSettings:
    """The user's notification settings (unsaved defaults, all off, when they never chose)."""
    found = NotificationSettings.objects.filter(user=user).first()
    return found if found is not None else NotificationSettings(user=user)


def check_webhook(url: str) -> str:
    """`url` if the portal will post to it: http or https, with a host."""
    url = url.strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidWebhook("a webhook must be an http:// or https:// URL")
    return url


def save_settings(
    user: Any, *, email: bool, webhook_url: str, on_completed: bool, on_failed: bool
) -> NotificationSettings:
    """Store what the user wants; sessions that ended before now are never announced."""
    url = check_webhook(webhook_url)
    now = timezone.now()
    row, _ = NotificationSettings.objects.update_or_create(
        user=user,
        defaults={"email": email, "webhook_url": url, "on_completed": on_completed, "on_failed": on_failed,
                  "since": now, "updated_at": now},
    )
    return row


def recent_for(user: Any, limit: int = 10) -> list[Notification]:
    return list(Notification.objects.filter(user=user).select_related("session__task").order_by("-created_at", "-pk")[:limit])


# -- the outbox ------------------------------------------------------------------------------------
def enqueue_due(now: datetime | None = None) -> list[Notification]:
    """Write the messages of every session that ended (completed, failed, interrupted) since its
    owner asked to be told, at most a day ago, that has none yet; idempotent."""
    now = now or timezone.now()
    created: list[Notification] = []
    wanted = NotificationSettings.objects.filter(Q(email=True) | ~Q(webhook_url="")).select_related("user")
    for choice in wanted:
        statuses = [*(COMPLETED if choice.on_completed else ()), *(FAILED if choice.on_failed else ())]
        if not statuses or not choice.user.is_active:
            continue
        ended = (
            TrainingSession.objects.filter(
                owner=choice.user, status__in=statuses, finished_at__gte=max(choice.since, now - WINDOW),
            )
            .exclude(notifications__user=choice.user)
            .order_by("finished_at")[:100]
        )
        for session in ended:
            rows = []
            if choice.email:
                if choice.user.email:
                    rows.append(Notification(session=session, user=choice.user, channel=Notification.Channel.EMAIL,
                                             event=session.status, target=choice.user.email, next_attempt_at=now))
                else:
                    logger.warning("notifications: %s wants e-mail but has no address", choice.user)
            if choice.webhook_url:
                rows.append(Notification(session=session, user=choice.user, channel=Notification.Channel.WEBHOOK,
                                         event=session.status, target=choice.webhook_url, next_attempt_at=now))
            if rows:
                # Two notifiers may race here: the unique constraint keeps one row per channel.
                Notification.objects.bulk_create(rows, ignore_conflicts=True)
                created.extend(Notification.objects.filter(session=session, user=choice.user).order_by("pk"))
    return created


def deliver_due(now: datetime | None = None, limit: int = 20) -> list[Notification]:
    """Send the messages that are due (new, retry time reached, or abandoned by a dead sender).

    Never raises for a delivery failure: it is logged, kept on the row and retried later, up to
    GENHRL_NOTIFY_ATTEMPTS times in all.
    """
    now = now or timezone.now()
    due = Notification.objects.filter(
        Q(status=Notification.Status.PENDING, next_attempt_at__lte=now)
        | Q(status=Notification.Status.SENDING, claimed_until__lt=now)
    ).order_by("next_attempt_at", "pk")[:limit]
    handled = []
    for message in due:
        if not _claim(message, now):
            continue  # another notifier took it
        handled.append(_deliver(message))
    return handled


def _claim(message: Notification, now: datetime) -> bool:
    claimed = Notification.objects.filter(pk=message.pk, status=message.status, attempts=message.attempts).update(
        status=Notification.Status.SENDING, claimed_until=now + timedelta(seconds=CLAIM_SECONDS),
        attempts=message.attempts + 1,
    )
    if claimed:
        message.status, message.attempts = Notification.Status.SENDING, message.attempts + 1
    return bool(claimed)


def _deliver(message: Notification) -> Notification:
    try:
        if message.channel == Notification.Channel.EMAIL:
            send_email(message)
        else:
            post_webhook(message.target, payload(message.session))
    except Exception as exc:
        return _failed(message, exc)
    now = timezone.now()
    with transaction.atomic():
        Notification.objects.filter(pk=message.pk).update(
            status=Notification.Status.SENT, sent_at=now, claimed_until=None, last_error="",
        )
    message.status, message.sent_at = Notification.Status.SENT, now
    logger.info("notification %s: %s sent to %s", message.pk, message.channel, message.target)
    return message


def _failed(message: Notification, exc: Exception) -> Notification:
    error = f"{type(exc).__name__}: {exc}"[:2000]
    now = timezone.now()
    if message.attempts >= attempts_allowed():
        status, next_at = Notification.Status.FAILED, now
        logger.error("notification %s: %s to %s failed for good after %s attempts: %s",
                     message.pk, message.channel, message.target, message.attempts, error)
    else:
        status, next_at = Notification.Status.PENDING, now + backoff(message.attempts)
        logger.warning("notification %s: %s to %s failed (attempt %s of %s, retrying at %s): %s",
                       message.pk, message.channel, message.target, message.attempts, attempts_allowed(),
                       next_at.isoformat(timespec="seconds"), error)
    Notification.objects.filter(pk=message.pk).update(
        status=status, next_attempt_at=next_at, claimed_until=None, last_error=error,
    )
    message.status, message.next_attempt_at, message.last_error = status, next_at, error
    return message


# -- the messages ----------------------------------------------------------------------------------
def session_link(session: TrainingSession) -> str:
    base = str(getattr(settings, "GENHRL_PUBLIC_URL", "http://127.0.0.1:8000")).rstrip("/")
    return base + reverse("training:session", kwargs={"pk": session.pk})


def summary(session: TrainingSession) -> str:
    """One line: what ended, how, and where to look."""
    runs = list(session.skill_runs.all())
    done = sum(1 for r in runs if r.status in ("completed", "skipped"))
    took = ""
    if session.started_at and session.finished_at:
        seconds = int((session.finished_at - session.started_at).total_seconds())
        took = f" in {seconds // 60} min {seconds % 60:02d} s"
    head = {
        SessionStatus.COMPLETED: "completed",
        SessionStatus.FAILED: "failed",
        SessionStatus.INTERRUPTED: "was interrupted",
    }.get(SessionStatus(session.status), str(session.status))
    text = (f"Training {session.task.name} ({session.task.robot}) {head}: session #{session.pk}, "
            f"{done} of {len(runs)} skills trained{took}.")
    if session.error:
        text += f" Error: {session.error.splitlines()[0][:300]}"
    return f"{text} {session_link(session)}"


def payload(session: TrainingSession) -> dict[str, Any]:
    """The webhook's JSON: Slack shows `text`; scripts read the rest."""
    runs = list(session.skill_runs.all())
    return {
        "text": summary(session),
        "event": f"session.{session.status}",
        "session": {
            "id": session.pk,
            "task": session.task.name,
            "robot": session.task.robot,
            "status": session.status,
            "error": session.error,
            "owner": session.owner.get_username() if session.owner_id else None,
            "started_at": session.started_at.isoformat() if session.started_at else None,
            "finished_at": session.finished_at.isoformat() if session.finished_at else None,
            "skills": {"total": len(runs), "completed": sum(1 for r in runs if r.status in ("completed", "skipped"))},
            "frames": sum(r.frames for r in runs),
            "url": session_link(session),
        },
    }


def send_email(message: Notification) -> None:
    session = message.session
    subject = f"[GenHRL] {session.task.name}: training {session.status} (session #{session.pk})"
    send_mail(subject, summary(session), None, [message.target], fail_silently=False)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is answered as an error: never follow a webhook elsewhere


_opener = urllib.request.build_opener(_NoRedirects)


def post_webhook(url: str, data: dict[str, Any]) -> int:
    """POST `data` as JSON; the HTTP status if 2xx, else an exception (timeouts included)."""
    check_webhook(url)
    request = urllib.request.Request(
        url, data=json.dumps(data).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "genhrl-portal"},
    )
    timeout = float(getattr(settings, "GENHRL_WEBHOOK_TIMEOUT", 10))
    with _opener.open(request, timeout=timeout) as response:  # noqa: S310 (scheme checked above)
        status = int(response.status)
    if not 200 <= status < 300:
        raise urllib.error.HTTPError(url, status, "not a 2xx answer", None, None)  # type: ignore[arg-type]
    return status
