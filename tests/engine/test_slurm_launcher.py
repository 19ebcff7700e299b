"""The slurm launcher: cells as submitit jobs, the same store as the local launcher, safe reruns.

Real jobs run through submitit's local executor (``slurm=dict(cluster='local')``). Slurm itself
is stood in for by three scripts on ``PATH`` (``srun``, ``sbatch``, ``sacct``), so the sbatch
file, the job array and the sacct-driven resubmission go through submitit's real Slurm code
without a cluster. The grid is ``benchmarks/default.py`` narrowed to ``pretrained`` on
mnist→uci, closed and open.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import time
from pathlib import Path

import pytest

from u2cdr.cli import main
from u2cdr.engine.slurm import JOB_CLAIM_FILE, JOB_FILE, SlurmSettings, job_parameters
from u2cdr.engine.store import LOCK_FILE
from u2cdr.registry import ConfigError

REPO = Path(__file__).resolve().parents[2]
DEFAULT = str(REPO / "benchmarks" / "default.py")
GRID = ["methods=[pretrained]", "digits.pairs=[(mnist,uci)]"]
BOTH = "scenarios=[closed,open]"
needs_submitit = pytest.mark.skipif(importlib.util.find_spec("submitit") is None,
                                    reason="the slurm extra: pip install 'u2cdr[slurm]'")


@pytest.fixture
def digits_env(monkeypatch, shared_cache: str) -> None:
    """The session's digits cache through the environment (jobs inherit it), one thread per cell."""
    monkeypatch.setenv("U2CDR_CACHE", shared_cache)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("U2CDR_NO_PROGRESS", "1")


def run(work: Path, *flags: str, options: tuple[str, ...] = (BOTH,)) -> int:
    return main(["run", DEFAULT, "--work-dir", str(work), *flags, "--cfg-options", *GRID, *options])


def records(work: Path) -> dict[tuple, dict]:
    found = {}
    for path in (work / "runs").rglob("result.json"):
        record = json.loads(path.read_text())
        found[(record["method"], record["query"], record["gallery"], record["scenario"],
               record["seed"])] = record
    return found


def job_files(work: Path) -> dict[str, dict]:
    """``{scenario: slurm_job.json}`` of every cell that has one."""
    return {path.parent.parent.parent.parent.name: json.loads(path.read_text())
            for path in (work / "runs").rglob(JOB_FILE)}


# ----- real jobs: submitit's local executor -----------------------------------------------------
@needs_submitit
def test_local_jobs_match_the_local_launcher_and_reruns_submit_nothing(tmp_path, digits_env,
                                                                       capsys) -> None:
    assert run(tmp_path / "local") == 0
    expected = records(tmp_path / "local")
    assert len(expected) == 2
    capsys.readouterr()

    work = tmp_path / "jobs"
    flags = ("--launcher", "slurm", "--slurm-array-parallelism", "2")
    local = (BOTH, "slurm.cluster=local")
    assert run(work, *flags, "--no-wait", options=local) == 0
    err = capsys.readouterr().err
    submitted = re.findall(r"submitted job (\d+): ", err)
    assert len(submitted) == 2 and "2 jobs submitted" in err and "2 queued or running" in err
    jobs = job_files(work)
    assert sorted(job["job_id"] for job in jobs.values()) == sorted(submitted)

    assert run(work, *flags, "--no-wait", options=local) == 0  # while the jobs run
    err = capsys.readouterr().err
    assert "0 jobs submitted" in err and "submitted job" not in err
    for scenario, job in jobs.items():  # each job was seen running, or had already finished
        finished = any(key[3] == scenario for key in records(work))
        assert finished or f"job {job['job_id']} running" in err, err

    assert run(work, *flags, options=local) == 0  # waits for the same two jobs
    err = capsys.readouterr().err
    assert "0 jobs submitted" in err and "2 done" in err
    got = records(work)
    assert got.keys() == expected.keys()
    for cell, record in got.items():
        assert record["key"] == expected[cell]["key"] and record["status"] == "done"
        assert record["metrics"] == expected[cell]["metrics"], cell  # bitwise, as two launchers
    assert (work / "tables" / "digits_open.md").is_file()
    stamps = {path: path.stat().st_mtime_ns for path in (work / "runs").rglob("result.json")}

    assert run(work, *flags, options=local) == 0
    err = capsys.readouterr().err
    assert "0 jobs submitted" in err and "2 done" in err
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert job_files(work) == jobs  # no job recorded since the first submission
    assert len(list((work / "slurm_logs").glob("*_submitted.pkl"))) == 2


# ----- Slurm stood in for by scripts ------------------------------------------------------------
FAKE_SBATCH = """#!/bin/sh
job=$(cat "{dir}/next_id")
echo $((job + 1)) > "{dir}/next_id"
cp "$1" "{dir}/sbatch_$job.sh"
echo "Submitted batch job $job"
"""
FAKE_SACCT = """#!/bin/sh
echo "$@" >> "{dir}/sacct_calls"
echo "JobID|State|NodeList"
cat "{dir}/states"
"""


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch) -> Path:
    """``srun``/``sbatch``/``sacct`` scripts first on PATH; sacct answers from ``states``."""
    folder = tmp_path / "fake_slurm"
    folder.mkdir()
    (folder / "next_id").write_text(f"{os.getpid() * 10}\n")  # unique ids: submitit caches states
    (folder / "states").write_text("")
    scripts = {"srun": "#!/bin/sh\nexit 0\n", "sbatch": FAKE_SBATCH, "sacct": FAKE_SACCT}
    for name, text in scripts.items():
        script = folder / name
        script.write_text(text.format(dir=folder))
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return folder


def set_states(fake: Path, states: dict[str, str]) -> None:
    (fake / "states").write_text("".join(f"{job}|{state}|node1\n" for job, state in states.items()))


def sacct_calls(fake: Path) -> int:
    calls = fake / "sacct_calls"
    return len(calls.read_text().splitlines()) if calls.exists() else 0


def sbatch_lines(fake: Path, job: str) -> set[str]:
    return {line for line in (fake / f"sbatch_{job}.sh").read_text().splitlines()
            if line.startswith("#SBATCH")}


@needs_submitit
def test_slurm_gets_one_array_and_only_ended_jobs_are_submitted_again(
        tmp_path, digits_env, fake_slurm, capsys) -> None:
    work = tmp_path / "work"
    assert run(work, "--launcher", "inline", options=("scenarios=[closed]",)) == 0
    closed_stamp = next((work / "runs").rglob("result.json")).stat().st_mtime_ns
    cluster = ("scenarios=[closed,open,partial]", "slurm.partition=from-config", "slurm.time=30",
               "slurm.cpus_per_task=3", "slurm.mem_gb=4", "slurm.sbatch_options.account=lab")
    flags = ("--launcher", "slurm", "--slurm-partition", "short", "--slurm-time", "90",
             "--slurm-array-parallelism", "1")
    first_id = int((fake_slurm / "next_id").read_text())
    capsys.readouterr()

    assert run(work, *flags, "--no-wait", options=cluster) == 0
    err = capsys.readouterr().err
    jobs = {scenario: job["job_id"] for scenario, job in job_files(work).items()}
    assert sorted(jobs.values()) == [f"{first_id}_0", f"{first_id}_1"]  # one array, closed done
    assert "2 jobs submitted" in err and "1 done" in err and "2 queued or running" in err
    assert {"#SBATCH --partition=short", "#SBATCH --time=90", "#SBATCH --cpus-per-task=3",
            "#SBATCH --mem=4GB", "#SBATCH --account=lab", "#SBATCH --gpus-per-node=0",
            "#SBATCH --array=0-1%1"} <= sbatch_lines(fake_slurm, str(first_id))

    assert main(["table", str(work)]) == 0  # while the jobs are queued: finished cells only
    tables = capsys.readouterr().out
    assert "closed-set" in tables and "open-set" not in tables and "partial" not in tables

    # open's job failed on a node that kept the cell's lock; partial's job still runs.
    open_dir = next(p.parent for p in (work / "runs").rglob(JOB_FILE) if "/open/" in str(p))
    lock = {"host": "node1", "pid": 4321, "time": time.time()}
    (open_dir / LOCK_FILE).write_text(json.dumps(lock))
    (open_dir / JOB_CLAIM_FILE).write_text(json.dumps({"job_id": jobs["open"], **lock}))
    set_states(fake_slurm, {jobs["open"]: "FAILED", jobs["partial"]: "RUNNING"})
    assert run(work, *flags, "--no-wait", options=cluster) == 0
    err = capsys.readouterr().err
    assert f"job {jobs['open']} ended (FAILED) without a result; submitting again" in err
    assert f"job {jobs['partial']} running" in err
    assert re.findall(r"submitted job (\S+): .*\| open \|", err) == [str(first_id + 1)]
    assert "1 job submitted" in err
    assert "#SBATCH --array" not in "".join(sbatch_lines(fake_slurm, str(first_id + 1)))
    assert not (open_dir / LOCK_FILE).exists()  # the dead job's lock was released
    after = job_files(work)
    assert after["open"]["attempts"] == 2 and after["open"]["job_id"] == str(first_id + 1)
    assert after["partial"]["job_id"] == jobs["partial"] and after["partial"]["attempts"] == 1
    assert sacct_calls(fake_slurm) == 1  # both earlier jobs asked about in one sacct call

    set_states(fake_slurm, {str(first_id + 1): "PENDING", jobs["partial"]: "CANCELLED by 1000"})
    assert run(work, *flags, "--no-wait", options=cluster) == 0
    err = capsys.readouterr().err
    resubmitted = re.findall(r"submitted job (\S+): .*\| (\w+) \|", err)
    assert resubmitted == [(str(first_id + 2), "partial")]
    assert f"job {first_id + 1} pending" in err
    assert sacct_calls(fake_slurm) == 2

    set_states(fake_slurm, {str(first_id + 1): "RUNNING", str(first_id + 2): "RUNNING"})
    assert run(work, *flags, "--no-wait", options=cluster) == 0
    assert "0 jobs submitted" in capsys.readouterr().err
    assert int((fake_slurm / "next_id").read_text()) == first_id + 3  # three sbatch calls in all
    assert next((work / "runs").rglob("result.json")).stat().st_mtime_ns == closed_stamp


# ----- settings and their errors ----------------------------------------------------------------
@pytest.mark.parametrize("option, message", [
    ("slurm.partiton=gpu", r"slurm.partiton: unknown key. Did you mean 'partition'\? Valid keys: "
                           r"cluster, partition, time, gpus, cpus_per_task, mem_gb, "
                           r"array_parallelism, sbatch_options, log_dir"),
    ("slurm.cluster=pbs", r"slurm.cluster: expected one of slurm, local, got 'pbs'"),
    ("slurm.time=0", r"slurm.time: expected an int >= 1 or None \(minutes a job may run"),
    ("slurm.sbatch_options=[1]", r"slurm.sbatch_options: expected a dict of option name"),
])
def test_bad_slurm_settings_stop_the_run_naming_the_key(tmp_path, option, message, capsys) -> None:
    assert run(tmp_path, "--launcher", "slurm", options=(option,)) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "runs").exists()


def test_slurm_flags_need_the_slurm_launcher_and_gpus_must_match_the_device(tmp_path,
                                                                             capsys) -> None:
    assert run(tmp_path, "--slurm-time", "10", "--no-wait") == 2
    assert "--slurm-time, --no-wait: only with --launcher slurm" in capsys.readouterr().err
    assert run(tmp_path, "--launcher", "slurm", "--slurm-gpus", "1",
               options=("slurm.cluster=local",)) == 2
    assert "slurm.gpus=1 but device is 'cpu'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@needs_submitit
def test_no_srun_on_this_machine_is_a_config_error(tmp_path, digits_env, monkeypatch,
                                                   capsys) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no_slurm_here"))
    assert run(tmp_path / "work", "--launcher", "slurm") == 2
    err = capsys.readouterr().err
    assert "this machine has no Slurm" in err and "slurm=dict(cluster='local')" in err


def test_without_submitit_the_error_names_the_extra(tmp_path, digits_env, monkeypatch,
                                                    capsys) -> None:
    monkeypatch.setitem(sys.modules, "submitit", None)  # `import submitit` now fails
    assert run(tmp_path, "--launcher", "slurm", options=(BOTH, "slurm.cluster=local")) == 2
    assert "the slurm launcher needs submitit: pip install 'u2cdr[slurm]'" in \
        capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_job_parameters_give_a_time_limit_and_follow_the_device() -> None:
    assert job_parameters(SlurmSettings(), "cpu", None) == {
        "name": "u2cdr", "timeout_min": 240, "gpus_per_node": 0}
    from_timeout = job_parameters(SlurmSettings(), "cuda", cell_timeout=121.0)
    assert from_timeout["timeout_min"] == 3 and from_timeout["gpus_per_node"] == 1
    full = job_parameters(SlurmSettings(partition="p", time=7, gpus=2, array_parallelism=4,
                                        sbatch_options={"qos": "high"}), "cuda:0", 3600.0)
    assert full == {"name": "u2cdr", "timeout_min": 7, "gpus_per_node": 2, "slurm_partition": "p",
                    "slurm_array_parallelism": 4, "slurm_additional_parameters": {"qos": "high"}}
    with pytest.raises(ConfigError, match=r"device is 'cuda' but slurm.gpus=0"):
        job_parameters(SlurmSettings(gpus=0), "cuda", None)


# ----- a real failure, fixed between two runs ---------------------------------------------------
FAILING_METHOD = '''
"""A user's method whose fit raises while a marker file exists (a bug fixed between runs)."""
import os

import torch

from u2cdr.methods.base import Method
from u2cdr.registry import METHODS


@METHODS.register_module(name="fails_while_marked")
class FailsWhileMarked(Method):
    """Pixel features; ``fit`` raises while ``marker`` exists."""

    family = "user"

    def __init__(self, marker: str = "", device: str = "cpu") -> None:
        self.marker = marker

    def fit(self, pair, work_dir) -> None:
        if os.path.exists(self.marker):
            raise RuntimeError("failed on purpose")

    def embed(self, domain):
        return torch.cat([x.flatten(1) for x, _ in domain.eval_loader()]).numpy()
'''


@pytest.fixture
def failing_method_grid(tmp_path):
    """A grid config beside its own method module (reached in jobs through custom_imports)."""
    from u2cdr.registry import METHODS

    (tmp_path / "fails_while_marked.py").write_text(FAILING_METHOD)
    config = tmp_path / "grid.py"
    config.write_text(
        f"_base_ = ['{REPO}/benchmarks/_base_/datasets/digits.py']\n"
        "custom_imports = dict(imports=['fails_while_marked'], allow_failed_imports=False)\n"
        f"methods = [dict(type='fails_while_marked', marker='{tmp_path / 'marker'}')]\n"
        "datasets = [dict(type='digits', pairs=[('uci', 'mnist')])]\n"
        f"scenarios = ['closed']\nseeds = [2024]\nwork_dir = '{tmp_path / 'work'}'\n"
        "slurm = dict(cluster='local')\n")
    yield config
    METHODS.module_dict.pop("fails_while_marked", None)
    sys.modules.pop("fails_while_marked", None)


@needs_submitit
def test_a_failed_job_is_reported_and_submitted_again_by_the_next_run(
        tmp_path, digits_env, failing_method_grid, capsys) -> None:
    command = ["run", str(failing_method_grid), "--launcher", "slurm"]
    (tmp_path / "marker").touch()
    assert main(command) == 1
    err = capsys.readouterr().err
    [first] = re.findall(r"submitted job (\d+): ", err)
    assert "FAILED fails_while_marked" in err and "RuntimeError: failed on purpose" in err
    [status] = (tmp_path / "work" / "runs").rglob("status.json")
    assert json.loads(status.read_text())["state"] == "failed"

    (tmp_path / "marker").unlink()  # the bug is fixed
    assert main(command) == 0
    err = capsys.readouterr().err
    assert f"job {first} ended (FAILED) without a result; submitting again" in err
    [second] = re.findall(r"submitted job (\d+): ", err)
    assert second != first and "1 done" in err
    [record] = records(tmp_path / "work").values()
    assert record["status"] == "done" and 0 < record["metrics"]["map_all"] <= 100
    assert job_files(tmp_path / "work")["closed"]["attempts"] == 2

    assert main(command) == 0
    assert "0 jobs submitted" in capsys.readouterr().err
