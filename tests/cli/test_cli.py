import json
import subprocess
import sys

from gpufleet.main import main


def run_cli(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_demo_then_summary(tmp_path, capsys):
    db = tmp_path / "demo.duckdb"
    code, _, err = run_cli(["demo", "--db", str(db), "--days", "0.25", "--nodes", "2", "--no-dashboard",
                            "--end", "1767225600", "--workers", "2"], capsys)
    assert code == 0, err
    assert "Landed" in err
    code, out, _ = run_cli(["report", "summary", "--db", str(db), "--json"], capsys)
    facts = json.loads(out)
    assert facts["gpus"] == 16 and facts["nodes"] == 2
    assert facts["samples"] > 10_000
    assert facts["days"] > 0.24
    assert facts["gpu_hours"] > 0


def test_workers_do_not_change_the_result(tmp_path, capsys):
    results = []
    for workers in (1, 3):
        db = tmp_path / f"w{workers}.duckdb"
        assert run_cli(["demo", "--db", str(db), "--days", "0.1", "--nodes", "3", "--no-dashboard",
                        "--end", "1767225600", "--workers", str(workers)], capsys)[0] == 0
        run_cli(["report", "summary", "--db", str(db), "--json"], capsys)
        import duckdb
        con = duckdb.connect(str(db), read_only=True)
        results.append(con.execute("SELECT count(*), sum(hash(series_id, ts, value)) FROM gauges").fetchone())
        con.close()
    assert results[0] == results[1]


def test_ingest_twice_then_summary(tmp_path, capsys, fixtures):
    db = tmp_path / "i.duckdb"
    f = fixtures / "vllm-0.4.3.prom"
    code, out, _ = run_cli(["ingest", "--db", str(db), "--file", str(f), "--json"], capsys)
    first = json.loads(out)
    assert code == 0 and first["landed"] == 1 and first["samples"] > 100
    code, out, _ = run_cli(["ingest", "--db", str(db), "--file", str(f), "--json"], capsys)
    assert json.loads(out) == {"landed": 0, "skipped": 1, "samples": 0, "rejected": []}


def test_bad_file_is_a_clear_error(tmp_path, capsys):
    code, _, err = run_cli(["ingest", "--db", str(tmp_path / "x.duckdb"), "--file", str(tmp_path / "missing.prom")],
                           capsys)
    assert code == 2 and "cannot read exposition file" in err


def test_summary_of_missing_store(tmp_path, capsys):
    code, _, err = run_cli(["report", "summary", "--db", str(tmp_path / "none.duckdb")], capsys)
    assert code == 2 and "does not exist" in err


def test_python_dash_m():
    proc = subprocess.run([sys.executable, "-m", "gpufleet", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "0.1.0"
