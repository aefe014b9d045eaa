"""lmforge.progress.ProgressBar: the one progress bar of every command."""

import subprocess
import sys

from lmforge.progress import ProgressBar


def test_a_kept_bar_prints_its_last_state_once_off_a_terminal(capsys):
    with ProgressBar("rm", 5, info=True, transient=False, lazy=True) as bar:
        on_step = bar.on_step(("loss", "accuracy", "val_accuracy"))
        on_step({"step": 2, "loss": 0.9})
        on_step({"step": 5, "loss": 0.5, "accuracy": 0.75})
    err = capsys.readouterr().err
    assert "rm" in err and "5/5" in err and "loss 0.5  accuracy 0.75" in err and "2/5" not in err


def test_lazy_disabled_and_transient_bars_print_nothing(capsys):
    with ProgressBar("sft", 3, info=True, transient=False, lazy=True):
        pass  # a run that fails before its first step prints only its error
    with ProgressBar("train", 3, info=True, transient=False, disable=True) as bar:
        bar.update(completed=3, info="loss 1.0")
    with ProgressBar("parquet", elapsed=True, stderr=False) as bar:
        bar.update(completed=1, total=2)
        bar.next_phase("writing", total=None)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""  # not even the blank line rich ends a live bar with


def test_on_step_takes_a_formatter_and_the_step_of_each_row(capsys):
    with ProgressBar("[bold]sha256 of the shards", 2_000_000, bytes=True, transient=False) as bar:
        bar.advance(2_000_000)
    with ProgressBar("train", 4, info=True, transient=False) as bar:
        bar.on_step(lambda row: f"loss {row['loss']:.4f}")({"step": 4, "loss": 2.0})
    err = capsys.readouterr().err
    assert "sha256 of the shards" in err and "2.0/2.0 MB" in err and "[bold]" not in err
    assert "4/4" in err and "loss 2.0000" in err


def test_importing_the_helper_does_not_import_rich():
    code = "import sys, lmforge.progress; assert 'rich' not in sys.modules, 'rich imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_polling_moves_the_bar_to_what_the_files_say_and_looks_once_more_at_the_end(capsys, tmp_path):
    """`polling` is the bar of work done in other processes: a look that fails to read (a file
    being replaced) is skipped, and the last look is taken when the block ends."""
    done = tmp_path / "done"
    done.mkdir()

    def look():
        if (tmp_path / "torn").exists():
            raise OSError("being replaced")
        return {"completed": len(list(done.iterdir())), "info": "tasks"}

    (tmp_path / "torn").write_text("")
    with ProgressBar("corpus process", 3, info=True, transient=False) as bar:
        with bar.polling(look, interval=0.01):
            (tmp_path / "torn").unlink()
            for name in "abc":
                (done / name).write_text("")
    err = capsys.readouterr().err
    assert "corpus process" in err and "3/3" in err and "tasks" in err
