"""Progress lines: quiet while work is fast, one line per interval while it is slow."""

from priorcache.progress import Progress


def test_fast_work_prints_nothing(capsys):
    progress = Progress("evaluation", 20, "episodes", every_s=3600)
    assert not any(progress(done) for done in range(1, 21))
    assert capsys.readouterr().out == ""


def test_slow_work_prints_label_count_and_detail(capsys):
    progress = Progress("[textworld / exact]", 200, "env steps", every_s=0.0)
    assert progress(50, "51 prior requests")
    line = capsys.readouterr().out
    assert line.startswith("[textworld / exact]: 50/200 env steps, 51 prior requests | ") and line.endswith(" s\n")
