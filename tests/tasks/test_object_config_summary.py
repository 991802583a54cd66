"""summarize_object_config: counts per shape kind, labels, positions and sizes for the task page."""

from __future__ import annotations

import json

from tasks.genhrl import MAX_OBJECTS_PER_KIND, SHAPE_KINDS, summarize_object_config
from tests.conftest import DEMO_ROOT, G1_GENERATED


def test_summary_counts_every_kind_with_labels_and_positions(isaaclab_fixture_tree):
    config = json.loads((G1_GENERATED / "skills" / "obstacle_course_seed42" / "object_config.json").read_text())

    summary = summarize_object_config(config)

    assert summary.counts == {"cubes": 3, "spheres": 2, "cylinders": 0, "cones": 0, "capsules": 0}
    assert summary.total == 5
    assert summary.comment.startswith("Scene configured with five objects")
    assert [(obj.kind, obj.label) for obj in summary.objects] == [
        ("cube", "Low wall for robot to jump over"),
        ("cube", "High wall to be pushed over by large sphere"),
        ("cube", "Block cube for robot to jump on top of"),
        ("sphere", "Large sphere for robot to push"),
        ("sphere", "Small sphere for robot to kick"),
    ]
    assert summary.objects[2].position == [18.0, 0.0, 0.25]
    assert summary.objects[0].size == {"x": 0.2, "y": 25.0, "z": 0.4}
    assert summary.objects[3].size == {"radius": 1.0}
    assert set(summary.objects[0].size) == {"x", "y", "z"}
    assert set(summary.objects[3].size) == {"radius"}


def test_summary_sizes_and_texts_per_kind():
    config = json.loads((DEMO_ROOT / "PointMass_generated" / "skills" / "fetch_block" / "object_config.json").read_text())

    summary = summarize_object_config(config)

    cube, cylinder = summary.objects
    assert (cube.label, cube.size, cube.size_text, cube.position_text, cube.mass) == (
        "Block (west)",
        {"x": 0.2, "y": 0.2, "z": 0.2},
        "0.2 × 0.2 × 0.2 m",
        "(-1.2, -0.4, 0.1)",
        1.0,
    )
    assert (cylinder.kind, cylinder.size, cylinder.size_text) == ("cylinder", {"radius": 0.1, "height": 0.4}, "r 0.1 m, h 0.4 m")
    assert summary.as_dict()["counts"]["cylinders"] == 1
    assert summary.as_dict()["objects"][1]["label"] == "Goal pad (east)"


def test_summary_tolerates_missing_and_odd_entries():
    summary = summarize_object_config(
        {"num_cones": 2, "position_cones": [[1, 2, 3]], "radius_cones": ["x"], "position_capsules": [[0, 0, 0]], "num_cubes": "3"}
    )

    assert summary.counts == {"cubes": 0, "spheres": 0, "cylinders": 0, "cones": 2, "capsules": 1}
    assert [obj.label for obj in summary.objects] == ["cone 1", "cone 2", "capsule 1"]
    assert summary.objects[0].position == [1.0, 2.0, 3.0] and summary.objects[0].size == {}
    assert summary.objects[1].position is None and summary.objects[1].position_text == ""
    assert summarize_object_config({}).counts == dict.fromkeys(SHAPE_KINDS, 0)


def test_summary_caps_objects_of_an_absurd_count_but_reports_it():
    summary = summarize_object_config({"num_spheres": 10**9})

    assert summary.counts["spheres"] == 10**9
    assert len(summary.objects) == MAX_OBJECTS_PER_KIND
