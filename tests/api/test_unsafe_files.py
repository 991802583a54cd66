"""The status a plain user reads never unpickles a file someone dropped into a run folder."""

from __future__ import annotations

import pytest

from tests.factories import api_url, evil_file
from training import paths

pytestmark = pytest.mark.django_db


def test_status_counts_a_booby_trapped_state_file_as_unreadable(fetch_block, token_client, tmp_path):
    skill = fetch_block.skills.get(name="go_to_block")
    folder = paths.success_dir(skill)
    folder.mkdir(parents=True)
    marker = tmp_path / "pwned"
    evil_file(folder / "success_states_go_to_block_20260101_120000.pt", marker)

    response = token_client.get(api_url(fetch_block, "status"))

    assert response.status_code == 200
    row = next(s for s in response.json()["skills"] if s["name"] == "go_to_block")
    assert (row["success_states"], row["unreadable_files"]) == (0, 1)
    assert not marker.exists()
