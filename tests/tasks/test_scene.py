"""tasks.scene: summarising GenHRL's object_config.json for the task page, whatever its state."""

from __future__ import annotations

from tasks.scene import MAX_OBJECTS_PER_KIND, scene_map, summarise_object_config
from tests.factories import DOORWAY_OBJECTS


def test_counts_every_kind_even_empty_ones():
    summary = summarise_object_config({"num_cubes": 1, "position_cubes": [[0, 0, 0]]})
    assert [(g.kind, g.count) for g in summary.groups] == [
        ("cubes", 1), ("spheres", 0), ("cylinders", 0), ("cones", 0), ("capsules", 0),
    ]


def test_objects_carry_labels_positions_and_sizes():
    summary = summarise_object_config(DOORWAY_OBJECTS)
    assert summary.total == 6 and summary.comment.startswith("Two walls")
    wall, block, ball, pillar, cone, capsule = summary.objects
    assert (wall.label, wall.position_text, wall.dimensions, wall.mass) == (
        "Left wall", "(3, -2.8, 0.75)", "0.5 × 5 × 1.5 m", 1000.0,
    )
    assert ball.dimensions == "r 0.2 m"
    assert pillar.dimensions == "r 0.25 m, h 2 m"
    assert (cone.label, capsule.label) == ("Traffic cone", "Capsule buoy")


def test_unknown_kinds_are_listed_too():
    summary = summarise_object_config({"num_tori": 2})
    assert summary.groups[-1].kind == "tori" and summary.groups[-1].count == 2


def test_positions_without_num_still_count():
    summary = summarise_object_config({"position_spheres": [[1, 2, 3], [4, 5, 6]]})
    spheres = summary.groups[1]
    assert spheres.count == 2 and spheres.declared == 0


def test_garbage_never_raises():
    for config in (None, [], "x", {"num_cubes": "2"}, {"num_cubes": True}, {"num_cubes": float("nan")},
                   {"num_cubes": 2, "position_cubes": [["a", 1], None], "size_cubes": "big", "_cube_comments": 3},
                   {"num_cubes": -4}):
        summary = summarise_object_config(config)
        assert summary.total >= 0
        scene_map(summary)


def test_huge_counts_are_capped():
    assert summarise_object_config({"num_cubes": 10**12}).total == MAX_OBJECTS_PER_KIND


def test_map_keeps_origin_and_every_object_in_view():
    summary = summarise_object_config(DOORWAY_OBJECTS)
    world = scene_map(summary)
    assert world is not None and len(world.shapes) == 6
    assert world.left < 0 < world.right and world.top < 0 < world.bottom
    for shape in world.shapes:
        assert world.left <= shape.cx <= world.right and world.top <= shape.cy <= world.bottom
    wall = world.shapes[0]
    assert wall.shape == "rect" and wall.cy == 2.8  # SVG y points down
    assert world.shapes[2].shape == "circle"


def test_no_map_without_positions():
    assert scene_map(summarise_object_config({"num_cubes": 2})) is None


def test_objects_whose_labels_name_a_colour_are_drawn_in_it():
    beacons = {
        "num_spheres": 3,
        "_sphere_comments": ["Red beacon (north-west)", "Blue beacon", "A beacon"],
        "position_spheres": [[-1, 1, 0], [1, 1, 0], [0, -1, 0]],
    }
    summary = summarise_object_config(beacons)
    assert [shape.color for shape in scene_map(summary).shapes] == ["red", "blue", ""]
    assert [obj.color for obj in summary.objects] == ["red", "blue", ""]  # the table's swatches
