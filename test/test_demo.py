"""`ami-wm demo`: a clear message without the shipped model; the table and files with a model."""
import argparse

from node_harness import tiny_sim_model

from ami_world_model.ros import demo


def _args(**kw):
    p = argparse.ArgumentParser()
    demo.add_arguments(p)
    argv = []
    for k, v in kw.items():
        argv += ["--" + k.replace("_", "-"), str(v)]
    return p.parse_args(argv)


def test_demo_without_model_says_how_to_make_it(tmp_path, capsys):
    assert demo.main(_args(checkpoint=str(tmp_path / "missing"), out=str(tmp_path / "o"))) == 2
    err = capsys.readouterr().err
    assert "make model" in err and "missing" in err
    assert not (tmp_path / "o").exists()


def test_demo_runs_both_tasks_and_says_where(tmp_path, capsys):
    ck = tiny_sim_model(tmp_path / "tiny")
    out = tmp_path / "demo"
    assert demo.main(_args(checkpoint=ck, episodes=1, max_steps=3, out=str(out), backend="torch")) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert any(ln.split()[:2] == ["reach", "1"] for ln in lines)
    assert any(ln.split()[:2] == ["push", "1"] for ln in lines)
    # the robot's mode, and the budget it ran (as the planner node reported it on ~/status)
    assert "planner mode deadline" in text
    assert any(ln.startswith("planner deadline: cem ") and "samples x" in ln and "deadline 80 ms" in ln
               for ln in lines)
    for name in ("distance.png", "episodes.gif", "demo.json"):
        assert (out / name).stat().st_size > 0
        assert str(out / name) in text
