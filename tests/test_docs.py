"""The docs cannot drift: every command is documented, and CI runs the README's test command."""

import re

from comment_stance.cli import app

from .conftest import REPO


def readme() -> str:
    return (REPO / "README.md").read_text()


def command_names(typer_app, prefix=""):
    import typer.main

    group = typer.main.get_group(typer_app)
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            for sub in command.commands:
                yield f"{prefix}{name} {sub}"
        else:
            yield f"{prefix}{name}"


def test_every_command_is_in_the_readme():
    text = readme()
    for name in command_names(app):
        assert f"stance {name}" in text, f"'stance {name}' is not documented in README.md"


def test_ci_runs_the_readmes_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    ci_command = [l for l in ci.splitlines() if "python3 -m venv" in l and not l.startswith("#")][0]
    assert ci_command in readme()


def test_readme_opens_with_the_two_commands():
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", readme(), flags=re.S)
    assert len(blocks) >= 2
    assert "pip install" in blocks[0] and "stance " in blocks[0]
    assert "pytest" in blocks[1]


def test_the_readmes_results_table_is_the_committed_full_study():
    import json

    board = json.loads((REPO / "experiments" / "results" / "full-study" / "metrics.json").read_text())["leaderboard"]
    table = readme().split("## Results on the shipped corpus")[1].split("\n\n")[2]
    rows = {line.split("|")[1].strip().split(" ")[0]: line for line in table.splitlines() if line.startswith("| ")}
    for evaluation in ("random", "unseen-article", "leave-one-article-out"):
        for row in board["evaluations"][evaluation]["rows"]:
            assert f"{row['macro_f1']:.3f}" in rows[row["model"]], (evaluation, row["model"])
            if row["model"] != "majority":
                low, high = row["macro_f1_ci"]
                assert f"[{low:.3f}, {high:.3f}]" in rows[row["model"]], (evaluation, row["model"])
