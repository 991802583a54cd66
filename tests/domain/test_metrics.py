"""`training.metrics`: TensorBoard's reader over real rl-games event files, the cache, and min-max
downsampling that keeps a spike's extremes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from training import metrics


def test_every_scalar_tag_of_a_real_rl_games_run_is_read(trained_runs) -> None:
    folder = trained_runs[1].spec_path.parent / "summaries"
    tags = metrics.tags(folder)
    # rl-games' own tags: rewards, episode lengths, losses, learning rate, fps.
    for tag in ("rewards/step", "episode_lengths/step", "losses/a_loss", "info/last_lr", "performance/step_fps"):
        assert tag in tags
    rewards = metrics.series(folder, "rewards/step")
    assert rewards is not None and len(rewards) >= 3
    # Steps are frames: up to the run's last epoch's (rl-games writes its summary after the epoch).
    assert list(rewards.step) == sorted(rewards.step) and 0 < rewards.step[-1] <= trained_runs[1].done["frames"]
    assert metrics.series(folder, "no/such_tag") is None


def test_the_points_are_those_tensorboards_event_accumulator_reads(trained_runs) -> None:
    from tensorboard.backend.event_processing import event_accumulator as ea

    folder = trained_runs[2].spec_path.parent / "summaries"
    accumulator = ea.EventAccumulator(str(folder), size_guidance={ea.SCALARS: 0})
    accumulator.Reload()
    assert metrics.tags(folder) == sorted(accumulator.Tags()["scalars"])
    for tag in metrics.tags(folder):
        ours, theirs = metrics.series(folder, tag), accumulator.Scalars(tag)
        assert list(ours.step) == [e.step for e in theirs]
        assert list(ours.value) == [e.value for e in theirs]
        assert list(ours.wall_time) == [e.wall_time for e in theirs]


def test_a_growing_file_is_read_on_and_a_replaced_one_afresh(trained_runs, tmp_path: Path) -> None:
    source = trained_runs[1].spec_path.parent / "summaries"
    folder = tmp_path / "summaries"
    folder.mkdir()
    assert metrics.tags(folder) == []
    (event_file,) = source.glob("*tfevents*")
    data = event_file.read_bytes()
    cut = len(data) // 2
    # A TensorBoard record never straddles our cut cleanly: the reader keeps what is whole.
    (folder / event_file.name).write_bytes(data[:cut])
    first = metrics.series(folder, "rewards/step")
    with (folder / event_file.name).open("ab") as grown:
        grown.write(data[cut:])
    full = metrics.series(folder, "rewards/step")
    assert full is not None and len(full) == len(metrics.series(source, "rewards/step"))
    assert first is None or len(first) < len(full)
    shutil.rmtree(folder)
    folder.mkdir()
    (folder / event_file.name).write_bytes(data[:cut])  # a new run (--new-run): shorter file, read afresh
    again = metrics.series(folder, "rewards/step")
    assert again is None or len(again) < len(full)


def test_downsampling_keeps_a_single_spikes_min_and_max() -> None:
    values = np.sin(np.arange(1_000_000) / 5000.0)
    values[654_321] = 1e6
    values[123_457] = -1e6
    values[10] = np.nan
    keep = metrics.downsample_indices(values, 2000)
    assert len(keep) <= 2000
    assert 654_321 in keep and 123_457 in keep
    assert np.nanmax(values[keep]) == 1e6 and np.nanmin(values[keep]) == -1e6
    assert keep[0] == 0 and keep[-1] == len(values) - 1
    assert list(metrics.downsample_indices(values[:1500], 2000)) == list(range(1500))  # short: whole


def test_payload_writes_non_finite_values_as_null() -> None:
    series = metrics.Series("t", np.arange(3), np.array([1.0, 2.0, 3.0]), np.array([1.0, np.inf, np.nan]))
    assert metrics.payload(series)["value"] == [1.0, None, None]
