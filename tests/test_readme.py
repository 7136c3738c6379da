"""The README's promises: its config reference is current and its commands exist."""

from pathlib import Path

from audiothinker.config import reference

ROOT = Path(__file__).resolve().parents[1]


def test_readme_config_reference_lists_every_key_with_its_default():
    readme = (ROOT / "README.md").read_text()
    for key, default, _ in reference():
        assert f"| `{key}` | `{default}` |" in readme, f"README config reference is stale for {key}; run `audiothinker config --reference`"


def test_readme_commands_are_make_targets_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "\ndemo:" in makefile and "\ntest:" in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text()
