"""What the CLI commands do, as plain functions: train, load, generate, evaluate.

Data flows one way: recipe -> dataset -> model -> trainer -> run directory -> eval / generate.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genlab.config import GanRecipe, from_dict, recipe_to_dict
from genlab.data import load_image_dataset
from genlab.errors import GenlabError
from genlab.models.gan import GANConfig, Generator, build_gan, sample_images
from genlab.tracking import CostMeter, RunDir
from genlab.training.checkpoint import load_weights, open_run_checkpoint
from genlab.training.distributed import init_distributed, shutdown
from genlab.training.finetune import FinetuneTask
from genlab.training.gan import GanTask
from genlab.training.lm import LMTask
from genlab.training.trainer import LoopConfig, Trainer


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# task name (a recipe's `task:`) -> the class that builds models and steps from that recipe
TASKS = {"gan": GanTask, "lm": LMTask, "finetune": FinetuneTask}


def train(recipe: Any, run_path: Path, resume: bool = False) -> dict[str, Any]:
    """Train `recipe` into `run_path` (or continue it); returns the run's report."""
    meter = CostMeter()
    env = init_distributed(recipe.train.device)
    try:
        run = RunDir(run_path, writer=env.is_main)
        if run.exists() and not resume:
            raise GenlabError(f"{run_path} already holds a run; pass --resume to continue it "
                              "or choose another --out")
        torch.manual_seed(recipe.seed)
        task = TASKS[recipe.task].from_recipe(recipe, env, run)
        t = recipe.train
        trainer = Trainer(task, run, LoopConfig(
            seed=recipe.seed, epochs=t.epochs, global_batch=recipe.data.batch_size, max_minutes=t.max_minutes,
            sample_every=t.sample_every, checkpoint_every=t.checkpoint_every, progress=t.progress), env)
        run.create(recipe_to_dict(recipe))
        resumed = trainer.resume() if resume else False
        if env.is_main:
            print(f"data: {task.data_source}; run: {run_path}"
                  + (f" (resumed at step {trainer.step})" if resumed else ""))
        summary = trainer.fit()
        ledger = {
            **summary,
            **meter.snapshot(env.device.type),
            "processes": env.world_size,
            "device": str(env.device),
            "parameters": {name: count_parameters(m) for name, m in task.modules.items()},
            "data_source": task.data_source,
        }
        run.update_report("cost", ledger)
        run.close()
        return run.read_report()
    finally:
        shutdown(env)


def load_generator(run_path: Path, checkpoint: str = "last",
                   device: str = "cpu") -> tuple[Generator, GanRecipe, GANConfig]:
    """The trained generator of a run directory (its last or best checkpoint), in eval mode."""
    run, folder, meta = open_run_checkpoint(run_path, checkpoint, "gan")
    recipe = from_dict(GanRecipe, run.read_config())
    config = from_dict(GANConfig, meta["model"])
    generator, _ = build_gan(config)
    load_weights(folder, {meta.get("sampler", "generator"): generator}, meta)
    return generator.to(device).eval(), recipe, config


def evaluate(run_path: Path, num_samples: int | None = None, checkpoint: str = "last",
             seed: int = 1234) -> dict[str, Any]:
    """Score a run's generator against the held-out test split and store it in report.json
    (a language model: its test-split loss and perplexity; a fine-tuned model: its task metric)."""
    from genlab.finetune_runs import evaluate_finetuned
    from genlab.text_runs import evaluate_lm

    task = RunDir(run_path).task
    if task == "lm":
        return evaluate_lm(run_path, checkpoint)
    if task == "finetune":
        if checkpoint != "last":
            raise GenlabError("fine-tuning runs keep their last checkpoint only: drop --checkpoint best")
        return evaluate_finetuned(run_path)
    from genlab.evaluation.classifier import load_evaluator
    from genlab.evaluation.image_eval import evaluate_samples

    generator, recipe, config = load_generator(run_path, checkpoint)
    n = recipe.eval.num_samples if num_samples is None else num_samples
    data = load_image_dataset(recipe.data.name, recipe.data.path)
    evaluator = load_evaluator(recipe.data.name)
    meter = CostMeter()
    images, labels = sample_images(generator, n, seed, batch_size=recipe.eval.batch_size)
    metrics = evaluate_samples(images, data, evaluator, requested_labels=labels,
                               batch_size=recipe.eval.batch_size)
    metrics["checkpoint"] = checkpoint
    metrics["eval_seconds"] = meter.snapshot()["wall_seconds"]
    run = RunDir(run_path)
    run.update_report("quality", metrics)
    return metrics
