"""Training paths: the documented layout, checked names, atomic policy publishing."""

from __future__ import annotations

import pytest

from training import paths

pytestmark = pytest.mark.django_db


def test_layout_follows_the_architecture_doc(fetch_block, settings):
    skill = fetch_block.skills.get(name="go_to_block")
    root = settings.GENHRL_RUNS_DIR.resolve()

    assert paths.skill_dir(skill) == root / "PointMass" / "fetch_block" / "skills" / f"{skill.pk}-go_to_block"
    assert paths.success_dir(skill).name == "success_states"
    assert paths.policy_dir(skill).name == "policy"
    assert paths.run_dir(skill, 17) == paths.skill_dir(skill) / "runs" / "17"


@pytest.mark.parametrize("name", ["..", ".", "a/b", "a\\b", "", "x" * 201, "..hidden", "ok..no", "sp ace"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(paths.UnsafePathError):
        paths.check_name(name)


def test_a_symlinked_task_folder_is_not_deleted_through(fetch_block, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("keep")
    folder = paths.task_dir(fetch_block)
    folder.parent.mkdir(parents=True)
    folder.symlink_to(elsewhere)

    with pytest.raises(paths.UnsafePathError):
        paths.delete_task_artifacts(fetch_block)

    assert (elsewhere / "precious.txt").read_text() == "keep"


def test_publishing_replaces_the_old_policy_whole(fetch_block, tmp_path):
    skill = fetch_block.skills.get(name="go_to_block")
    for version in ("old", "new"):
        source = tmp_path / version
        source.mkdir()
        (source / "policy.pth").write_text(version)
        (source / f"{version}.yaml").write_text(version)
        paths.publish_policy(source, skill)

    target = paths.policy_dir(skill)
    assert sorted(p.name for p in target.iterdir()) == ["new.yaml", "policy.pth"]
    assert (target / "policy.pth").read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["policy"]
