"""`hobguard sim run X --plot FILE`: a missing folder is made; a path that
cannot be written gets a clear error and exit status 2 before the scenario
runs, never a traceback."""

import os

import pytest
from hobguard.cli import main as cli_main


def run(capsys, *argv):
    code = cli_main(["sim", "run", "simmer_timer", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_plot_into_a_missing_folder_makes_the_folder(tmp_path, capsys):
    target = tmp_path / "missing" / "deeper" / "simmer.png"
    code, out, err = run(capsys, "--plot", str(target))
    assert code == 0, err
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot written to {target}" in out


@pytest.mark.parametrize(
    "name, words",
    [
        ("simmer.txt", "give a file name ending in .png, .svg, .pdf"),
        ("simmer", "give a file name ending in .png, .svg, .pdf"),
        ("a_file.png/simmer.png", "is a file"),
        ("a_folder.png", "is a folder; give a file name in it"),
    ],
)
def test_a_plot_path_that_cannot_be_written_is_refused_before_the_run(tmp_path, capsys, name, words):
    (tmp_path / "a_file.png").write_text("not a folder")
    (tmp_path / "a_folder.png").mkdir()
    code, out, err = run(capsys, "--plot", str(tmp_path / name))
    assert code == 2
    assert out == ""  # refused before the scenario ran
    assert err.startswith("hobguard sim run: --plot ") and words in err
    assert "Traceback" not in err


def test_a_folder_that_cannot_be_written_is_refused(tmp_path, capsys, monkeypatch):
    # as root no mode stops a write: the folder answers as it would a user
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(locked) else real_access(p, mode))
    code, out, err = run(capsys, "--plot", str(locked / "simmer.png"))
    assert code == 2
    assert f"cannot write in the folder {locked} (permission denied)" in err


def test_a_write_that_fails_after_the_run_is_reported_with_status_2(tmp_path, capsys, monkeypatch):
    from hobguard_sim import plot

    def disk_full(result, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plot, "plot_result", disk_full)
    code, out, err = run(capsys, "--plot", str(tmp_path / "simmer.png"))
    assert code == 2
    assert out.strip(), "the timeline is printed before the plot fails"
    assert f"cannot write the plot to {tmp_path / 'simmer.png'}: No space left on device" in err
