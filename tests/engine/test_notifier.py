"""A worker's notifier thread tells the owner when their session ends: the webhook arrives at a
server on 127.0.0.1 without anyone calling the outbox by hand, and a dead webhook never touches
the training."""

from __future__ import annotations

import pytest

from tests.factories import FAST, WebhookServer, fake_builder, wait_for
from training import notifications
from training.engine.worker import Worker
from training.lab_models import Notification
from training.models import SessionStatus, TrainingSession

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.training]


def make_worker() -> Worker:
    worker = Worker(slots=1, worker_id="notifying", poll_interval=0.05,
                    orchestrator_options={"command_builder": fake_builder(), "timings": FAST})
    worker.notifier.interval = 0.2
    return worker


def test_a_finished_session_is_announced_by_the_workers_notifier(fetch_block, queue, researcher):
    with WebhookServer() as server:
        notifications.save_settings(researcher, email=False, webhook_url=server.url, on_completed=True, on_failed=True)
        session = queue(fetch_block)
        worker = make_worker()
        worker.start()
        try:
            assert server.arrived.wait(60)
        finally:
            worker.stop(grace=5)

    assert TrainingSession.objects.get(pk=session.pk).status == SessionStatus.COMPLETED
    (request,) = server.received
    assert request["json"]["session"]["id"] == session.pk and "completed" in request["json"]["text"]
    assert Notification.objects.get().status == Notification.Status.SENT


def test_a_dead_webhook_never_touches_training(fetch_block, queue, researcher):
    notifications.save_settings(researcher, email=False, webhook_url="http://127.0.0.1:9/refused",
                                on_completed=True, on_failed=True)
    session = queue(fetch_block)
    worker = make_worker()
    worker.start()
    try:
        assert wait_for(lambda: Notification.objects.filter(attempts__gte=1).exists(), 60)
    finally:
        worker.stop(grace=5)
    assert TrainingSession.objects.get(pk=session.pk).status == SessionStatus.COMPLETED
    message = Notification.objects.get()
    assert message.status == Notification.Status.PENDING and message.last_error  # kept for a retry
