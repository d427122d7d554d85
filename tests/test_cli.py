from __future__ import annotations

import json
import subprocess
import sys

import pytest

from collapse_callbacks.cli import main


def test_profile_prints_roles_and_summaries(capsys):
    assert main(["profile", "example:penguins"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("example:penguins: 344 rows, 8 columns")
    assert "species            categorical       0      -  3 distinct; top: Adelie 152" in out
    assert "body_mass_g        numeric           2      0  mean 4202" in out


def test_profile_json_holds_rows_and_column_roles(tmp_path, capsys, penguins):
    out = tmp_path / "profile.json"
    assert main(["profile", "example:penguins", "--json", str(out), "--max-rows", "100"]) == 0
    data = json.loads(out.read_text())
    assert data["rows"] == 100
    assert data["columns"]["island"]["role"] == "categorical"
    counts = penguins.head(100)["island"].value_counts().items()
    expected = [{"value": v, "count": n} for v, n in sorted(counts, key=lambda kv: (-kv[1], kv[0]))]
    assert data["columns"]["island"]["top"] == expected  # ties broken by value
    assert data["columns"]["bill_length_mm"]["nulls"] == 1


def test_columns_and_role_options(capsys):
    code = main(
        [
            "profile",
            "example:penguins",
            "--columns",
            "year",
            "island",
            "--role",
            "year=categorical",
            "--json",
            "-",
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data["columns"]) == ["year", "island"]
    assert data["columns"]["year"]["role"] == "categorical"
    assert data["columns"]["year"]["distinct"] == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["profile", "no/such/file.csv"], "no/such/file.csv: no such file or directory"),
        (["profile", "example:nope"], "no example 'nope'"),
        (
            ["profile", "example:penguins", "--role", "species=numeric"],
            "cannot treat a string column",
        ),
        (["profile", "example:penguins", "--role", "species"], "--role takes COL=ROLE"),
        (["profile", "example:penguins", "--columns", "wings"], "no column 'wings'"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_bad_input_from_the_installed_script_has_no_traceback(tmp_path):
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3,4,5\n")
    result = subprocess.run(
        [sys.executable, "-m", "collapse_callbacks", "profile", str(ragged)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "row 1: has 3 fields where the header has 2" in result.stderr


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["profile"])
    assert caught.value.code == 2
    with pytest.raises(SystemExit) as caught:
        main(["profile", "example:penguins", "--max-rows", "0"])
    assert caught.value.code == 2
