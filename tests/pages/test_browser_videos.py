"""A person watches a run's video in a real chromium against a real daphne: the session page lists
it, it plays from the server with range requests, and seeking to the middle works."""

from __future__ import annotations

from typing import Any

import pytest

from tests.live import LiveDaphne
from training.models import SkillRun

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_session_page_video_plays_and_seeks(chromium: Any, live_daphne: LiveDaphne, trained_block_run: SkillRun,
                                            researcher: Any) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    context.add_cookies([live_daphne.session_cookie(researcher)])
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    ranges: list[str] = []
    page.on("response", lambda r: ranges.append(r.headers.get("content-range", "")) if r.status == 206 else None)
    try:
        page.goto(live_daphne.url(f"/training/sessions/{trained_block_run.session_id}/"))
        video = page.locator("#session-media video").first
        video.wait_for()
        assert "recorded at step" in page.locator("#session-media").inner_text()
        page.wait_for_function("v => v.readyState >= 1 && v.duration > 0", arg=video.element_handle())
        seeked = video.evaluate(
            """v => new Promise((done, fail) => {
                v.addEventListener('seeked', () => done(v.currentTime), {once: true});
                v.addEventListener('error', () => fail(String(v.error && v.error.code)), {once: true});
                v.currentTime = v.duration / 2;
            })"""
        )
        assert seeked > 0
        assert any(r.startswith("bytes ") for r in ranges)  # chromium fetched it in ranges
        assert violations == []
    finally:
        context.close()
