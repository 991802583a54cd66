"""A small SSE reader for tests: chunks in, (event, data) out."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any


def parse_block(block: str) -> tuple[str, Any] | None:
    """One SSE message (lines without the blank separator) as (event, data); None for comments."""
    event, data = "message", []
    for line in block.split("\n"):
        if line.startswith(":") or not line:
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
    if not data:
        return None
    text = "\n".join(data)
    try:
        return event, json.loads(text)
    except ValueError:
        return event, text


class Buffer:
    """Accumulates chunks and yields complete messages."""

    def __init__(self) -> None:
        self.text = ""
        self.comments = 0

    def feed(self, chunk: bytes | str) -> list[tuple[str, Any]]:
        self.text += chunk.decode() if isinstance(chunk, bytes) else chunk
        self.text = self.text.replace("\r\n", "\n")
        messages = []
        while "\n\n" in self.text:
            block, self.text = self.text.split("\n\n", 1)
            parsed = parse_block(block)
            if parsed is None:
                self.comments += block.startswith(":")
            else:
                messages.append(parsed)
        return messages


async def aevents(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[str, Any]]:
    buffer = Buffer()
    async for chunk in chunks:
        for message in buffer.feed(chunk):
            yield message


def events(chunks: Iterator[bytes]) -> Iterator[tuple[str, Any]]:
    buffer = Buffer()
    for chunk in chunks:
        yield from buffer.feed(chunk)
