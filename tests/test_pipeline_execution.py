"""A recipe's `[execution]` table: the executor of its corpus, dedup, ingest and shards stages,
checked key by key like every other table and recorded in pipeline.json. (A recipe's corpus
stage run on a real Ray cluster is in tests/test_ray.py.)"""

from __future__ import annotations

import pytest

from lmforge.pipelines.recipe import RecipeError, parse_recipe

BASE = {"pipeline": {"output": "out", "workers": 3}, "corpus": {"inputs": ["x.warc.gz"]}}


def recipe(**execution):
    return parse_recipe({**BASE, "execution": execution})


@pytest.mark.parametrize("table, message", [
    ({"exector": "ray"}, "[execution]: unknown key exector; known keys:"),
    ({"executor": "dask"}, "[execution]: executor must be one of local, slurm, ray, not 'dask'"),
    ({"executor": "slurm"}, "[execution]: the slurm executor needs a partition"),
    ({"tasks": 0}, "[execution]: tasks must be >= 1"),
    ({"tasks": "many"}, "[execution].tasks: 'many' is a string; expected an integer"),
    ({"extra": {}}, "[execution]: unknown key extra"),
    ({"ray_env": [1]}, "[execution].ray_env: 1 is an integer; expected a string"),
    ({"slurm_wait": "a day"}, "[execution]: slurm_wait 'a day': not a time; write HH:MM:SS"),
])
def test_a_bad_execution_table_is_refused_by_name(table, message):
    with pytest.raises(RecipeError) as err:
        recipe(**table)
    assert message in str(err.value)


def test_execution_defaults_follow_the_recipe_workers_and_the_engine(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "t")  # a ray_env variable must be set where the pipeline runs
    assert parse_recipe(BASE).executor().executor == "local"
    assert (parse_recipe(BASE).executor().tasks, parse_recipe(BASE).executor().workers) == (3, 3)  # as before [execution]
    ray = recipe(executor="ray", ray_address="10.0.0.1:6379", ray_env=["HF_TOKEN"], tasks=8)
    assert (ray.executor().tasks, ray.executor().workers, ray.executor().ray_env) == (8, 8, ("HF_TOKEN",))
    slurm = recipe(executor="slurm", slurm_partition="cpu", slurm_sbatch={"constraint": "amd"}, slurm_time="2:00:00")
    ex = slurm.executor()
    assert (ex.tasks, ex.workers, ex.slurm_partition, ex.slurm_sbatch, ex.slurm_time) == (3, 3, "cpu", {"constraint": "amd"}, "2:00:00")


def test_the_pipeline_records_its_executor_and_refuses_slurm_without_sbatch(tmp_path, monkeypatch):
    from lmforge.pipelines.runner import PipelineRunner

    warc = tmp_path / "x.warc.gz"
    warc.write_bytes(b"")
    data = {"pipeline": {"output": str(tmp_path / "out")}, "corpus": {"inputs": [str(warc)]},
            "execution": {"executor": "slurm", "slurm_partition": "cpu", "tasks": 4}}
    runner = PipelineRunner(parse_recipe(data), progress=False, log=lambda line: None)
    assert runner.record["execution"] == {"executor": "slurm", "tasks": 4, "workers": 4, "slurm_partition": "cpu",
                                          "slurm_time": "24:00:00", "slurm_cpus_per_task": 1, "slurm_mem_per_cpu_gb": 2,
                                          "slurm_wait": "48:00:00"}
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch
    with pytest.raises(RecipeError, match=r"\[execution\] --executor slurm needs Slurm's sbatch on PATH"):
        runner.run()
