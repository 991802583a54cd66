"""Downloads and videos really stream under daphne (ASGI): Django turns a plain iterator into a
list before the first byte, so `media_views._streamed` hands ASGI an async iterator that pulls one
chunk at a time and closes the producer when the client goes away."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator

from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from django.test import RequestFactory

from training import media_views


def _asgi_request() -> ASGIRequest:
    scope = {"type": "http", "method": "GET", "path": "/x", "query_string": b"", "headers": []}
    return ASGIRequest(scope, io.BytesIO())


def test_an_asgi_body_is_pulled_one_chunk_at_a_time_and_closed_when_the_client_leaves() -> None:
    made: list[int] = []
    closed: list[bool] = []

    def producer() -> Iterator[bytes]:
        try:
            for n in range(1000):
                made.append(n)
                yield b"x" * 10
        finally:
            closed.append(True)

    response = StreamingHttpResponse(media_views._streamed(_asgi_request(), producer()))
    assert response.is_async

    async def first_then_leave() -> bytes:
        body = aiter(response)
        chunk = await anext(body)
        await body.aclose()  # what Django does when the client disconnects
        return chunk

    assert asyncio.run(first_then_leave()) == b"x" * 10
    assert len(made) == 1 and closed == [True]  # never built whole, and the producer was closed


def test_a_wsgi_body_stays_a_plain_iterator() -> None:
    chunks = iter([b"a", b"b"])
    assert media_views._streamed(RequestFactory().get("/x"), chunks) is chunks
