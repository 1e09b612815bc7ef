"""`genlab sweep --storage postgresql://...`: the same command started twice, as on two machines (each its own
--out folder), shares one study in a real PostgreSQL server. The server comes from Debian's `postgresql`
package (scripts/install-system-data.sh); this module starts it in a temporary folder and stops it after."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from tests.test_sweep import PRUNING_SPACE, finished, tiny, write_space  # noqa: F401 (tiny is a fixture)

PG_BINS = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
if not PG_BINS and not os.environ.get("CI"):  # CI installs it (scripts/install-system-data.sh)
    pytest.skip("PostgreSQL is not installed (apt-get install postgresql)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server on 127.0.0.1 with trust authentication and a database `sweeps`."""
    bin_dir = PG_BINS[-1].parent
    folder = Path(tempfile.mkdtemp(prefix="genlab-pg-"))
    as_postgres = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: the package's own user runs it
        shutil.chown(folder, "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()
    run = [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        [*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-U", "genlab", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *run,
            "-l",
            str(folder / "server.log"),
            "-w",
            "start",
            "-o",
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off",
        ],
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "genlab", "sweeps"],
            check=True,
            capture_output=True,
        )
        yield f"postgresql+psycopg://genlab@127.0.0.1:{port}/sweeps"
    finally:
        subprocess.run([*run, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_two_machines_share_one_postgresql_study(tmp_path, tiny, postgres_url):  # noqa: F811
    space = write_space(tmp_path, {**PRUNING_SPACE, "pruner": "none"})
    # 8 trials of 40 steps: enough work that the worker whose start-up is slower still gets some
    command = [
        sys.executable,
        "-m",
        "genlab",
        "sweep",
        *tiny,
        "train.max_iters=40",
        "--space",
        space,
        "--trials",
        "8",
        "--study",
        "shared",
        "--storage",
        postgres_url,
    ]
    workers = [
        subprocess.Popen(
            [*command, "--out", str(tmp_path / machine)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for machine in ("machine-a", "machine-b")
    ]
    outputs = [worker.communicate(timeout=900) for worker in workers]
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err
        assert "locked" not in out + err and "Traceback" not in err
    study = optuna.load_study(study_name="shared", storage=postgres_url)
    trials = study.get_trials()
    assert len(finished(study)) == 8 and len(trials) == 8
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both machines took trials
    assert all((Path(t.user_attrs["run"]) / "report.json").is_file() for t in trials)
    assert {Path(t.user_attrs["run"]).parts[len(tmp_path.parts)] for t in trials} == {"machine-a", "machine-b"}
