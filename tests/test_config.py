import os
import re

import pytest

from genlab.core.recipe import (
    SHIPPED_RECIPES,
    apply_override,
    from_dict,
    read_recipe_tree,
    recipe_files,
    recipe_purpose,
    resolve_relative_paths,
)
from genlab.errors import GenlabError
from genlab.tasks import TASKS, load_recipe
from genlab.tasks.gan.recipe import GanRecipe

RECIPES = sorted(SHIPPED_RECIPES.glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_every_shipped_recipe_validates_against_its_tasks_schema(path):
    recipe = load_recipe(path)
    assert isinstance(recipe, TASKS[recipe.task].recipe_type) and recipe.name == path.stem


def test_every_registered_task_has_a_shipped_recipe():
    assert {load_recipe(path).task for path in RECIPES} == set(TASKS)


def test_essay_recipe_keeps_the_essays_hyper_parameters():
    recipe = load_recipe("essay-mlp-mnist")
    assert (recipe.model.arch, recipe.model.latent_dim, recipe.data.batch_size) == ("mlp", 100, 128)
    assert (recipe.train.lr_g, recipe.train.lr_d, recipe.train.betas) == (2e-4, 2e-4, [0.5, 0.999])
    assert recipe.train.epochs == 2 * 100  # twice the essay's 100 epochs: the demo's margin (docs/gan.md)


def test_overrides_are_typed():
    recipe = load_recipe("essay-mlp-mnist", ["train.epochs=3", "train.lr_g=1e-3", "data.path=/x"])
    assert recipe.train.epochs == 3 and recipe.train.lr_g == 1e-3 and recipe.data.path == "/x"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["train.epochz=3"], "unknown recipe key 'train.epochz'"),
        (["trian.epochs=3"], "unknown recipe key 'trian'"),
        (["train.epochs=three"], "'train.epochs' must be int"),
        (["train.epochs=2.5"], "'train.epochs' must be int"),
        (["train.betas=0.5"], "'train.betas' must be a list"),
        (["model.arch=vae"], "model.arch must be one of"),
        (["train.epochs=0"], "train.epochs must be >= 1"),
        (["train.epochs"], "must look like key.sub=value"),
        (["train.epochs.x=1"], "'epochs' is not a section"),
        (["train.lr_g=nan"], "'train.lr_g' must be a finite number"),
        (["train.lr_g=inf"], "'train.lr_g' must be a finite number"),
    ],
)
def test_bad_recipes_fail_with_one_clear_message(overrides, message):
    with pytest.raises(GenlabError, match=message):
        load_recipe("essay-mlp-mnist", overrides)


def test_section_must_be_a_mapping():
    with pytest.raises(GenlabError, match="'train' must be a mapping"):
        from_dict(GanRecipe, {"train": 3})


def test_unknown_recipe_name():
    with pytest.raises(GenlabError, match="not found"):
        load_recipe("no-such-recipe")


def test_a_misspelt_recipe_name_suggests_the_closest_ones():
    with pytest.raises(
        GenlabError, match=r"not found: did you mean essay-mlp-mnist .*\(`genlab recipes` lists them\)$"
    ):
        load_recipe("esay-mlp-mnist")


def test_every_shipped_recipe_says_what_it_is_for_in_one_line():
    purposes = {path.stem: recipe_purpose(path) for path in RECIPES}
    assert all(purposes.values()) and len(set(purposes.values())) == len(purposes)


def test_genlab_recipes_folders_come_before_the_shipped_ones(tmp_path, monkeypatch):
    mine, empty = tmp_path / "mine", tmp_path / "empty"
    mine.mkdir(), empty.mkdir()
    (mine / "essay-mlp-mnist.yaml").write_text("# my own essay\ntask: gan\ntrain: {epochs: 1}\n")
    (mine / "tiny-gan.yaml").write_text("task: gan\n")
    monkeypatch.setenv("GENLAB_RECIPES", f"{empty}{os.pathsep}{mine}")
    assert recipe_files()["tiny-gan"] == mine / "tiny-gan.yaml"
    assert load_recipe("essay-mlp-mnist").train.epochs == 1
    monkeypatch.setenv("GENLAB_RECIPES", "")  # empty: unset, the shipped recipes only
    assert "tiny-gan" not in recipe_files() and load_recipe("essay-mlp-mnist").train.epochs == 200


def test_a_recipe_without_a_name_is_named_after_its_file(tmp_path):
    (tmp_path / "my-digits.yaml").write_text("task: gan\n")
    assert load_recipe(tmp_path / "my-digits.yaml").name == "my-digits"
    assert read_recipe_tree(tmp_path / "my-digits.yaml", ["name=other"])["name"] == "other"


def test_a_relative_path_key_is_looked_up_here_then_beside_the_users_recipe(tmp_path, monkeypatch):
    recipes, here = tmp_path / "recipes", tmp_path / "here"
    (recipes / "runs" / "base").mkdir(parents=True), here.mkdir()
    (recipes / "ft.yaml").write_text("task: finetune\nstart: runs/base\n")
    monkeypatch.chdir(here)
    tree = {"start": "runs/base"}
    resolve_relative_paths(tree, ("start",), recipes / "ft.yaml")
    assert tree["start"] == str(recipes / "runs" / "base")
    (here / "runs" / "base").mkdir(parents=True)  # the current directory wins: the value is kept as written
    tree = {"start": "runs/base"}
    resolve_relative_paths(tree, ("start",), recipes / "ft.yaml")
    assert tree["start"] == "runs/base"
    tree = {"start": "runs/missing"}
    with pytest.raises(GenlabError, match=re.escape(f"(tried {here}/runs/missing and {recipes}/runs/missing)")):
        resolve_relative_paths(tree, ("start",), recipes / "ft.yaml")
    with pytest.raises(GenlabError, match=re.escape(f"(tried {here}/runs/missing);")):  # a shipped recipe: here only
        resolve_relative_paths(tree, ("start",), "modernize-full")
    tree = {"start": "minilm"}  # a bare word found nowhere is the task's to read
    resolve_relative_paths(tree, ("start",), "modernize-full")
    assert tree == {"start": "minilm"}


def test_invalid_yaml(tmp_path):
    (tmp_path / "r.yaml").write_text("train: [unclosed")
    with pytest.raises(GenlabError, match="not valid YAML"):
        load_recipe(tmp_path / "r.yaml")


def test_apply_override_builds_sections():
    tree = {}
    apply_override(tree, "a.b.c=[1, 2]")
    assert tree == {"a": {"b": {"c": [1, 2]}}}


def test_unknown_task():
    with pytest.raises(GenlabError, match="unknown task 'diffusion'"):
        load_recipe("essay-mlp-mnist", ["task=diffusion"])


def test_yaml_float_spellings_are_floats(tmp_path):
    """YAML 1.1 reads 1e-3 (no dot) as a string; a recipe file and an override accept it alike."""
    (tmp_path / "r.yaml").write_text("task: gan\ntrain:\n  lr_g: 1e-3\n")
    assert load_recipe(tmp_path / "r.yaml").train.lr_g == 1e-3


def test_a_missing_recipe_path_never_falls_back_to_a_shipped_recipe():
    with pytest.raises(GenlabError, match="recipe file /nonexistent/dir/essay-mlp-mnist.yaml not found"):
        load_recipe("/nonexistent/dir/essay-mlp-mnist.yaml")


def test_binary_recipe_is_one_clear_error(tmp_path):
    (tmp_path / "r.yaml").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(GenlabError, match="not a UTF-8 text file"):
        load_recipe(tmp_path / "r.yaml")


def test_lm_runs_count_steps_not_epochs():
    recipe = load_recipe("char-gpt-kjv", ["train.max_iters=500", "train.eval_interval=100"])
    assert recipe.train.periods == 5
    with pytest.raises(GenlabError, match="must be a multiple of train.eval_interval"):
        load_recipe("char-gpt-kjv", ["train.max_iters=550", "train.eval_interval=100"])
    with pytest.raises(GenlabError, match="unknown recipe key 'train.epochs'"):
        load_recipe("char-gpt-kjv", ["train.epochs=2"])


def test_an_lm_run_made_before_max_iters_still_reads():
    tree = {"task": "lm", "train": {"epochs": 3, "eval_interval": 10}}
    assert TASKS["lm"].recipe(tree).train.max_iters == 30
