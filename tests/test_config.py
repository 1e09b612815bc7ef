from pathlib import Path

import pytest

from genlab.config import RECIPE_TYPES, GanRecipe, apply_override, from_dict, load_recipe
from genlab.errors import GenlabError

RECIPES = sorted((Path(__file__).parent.parent / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_every_shipped_recipe_validates(path):
    recipe = load_recipe(path)
    assert isinstance(recipe, RECIPE_TYPES[recipe.task]) and recipe.name == path.stem


def test_essay_recipe_keeps_the_essays_hyper_parameters():
    recipe = load_recipe("essay-mlp-mnist")
    assert (recipe.model.arch, recipe.model.latent_dim, recipe.data.batch_size) == ("mlp", 100, 128)
    assert (recipe.train.lr_g, recipe.train.lr_d, recipe.train.betas, recipe.train.epochs) == (
        2e-4, 2e-4, [0.5, 0.999], 100)


def test_overrides_are_typed():
    recipe = load_recipe("essay-mlp-mnist", ["train.epochs=3", "train.lr_g=1e-3", "data.path=/x"])
    assert recipe.train.epochs == 3 and recipe.train.lr_g == 1e-3 and recipe.data.path == "/x"


@pytest.mark.parametrize("overrides, message", [
    (["train.epochz=3"], "unknown recipe key 'train.epochz'"),
    (["trian.epochs=3"], "unknown recipe key 'trian'"),
    (["train.epochs=three"], "'train.epochs' must be int"),
    (["train.epochs=2.5"], "'train.epochs' must be int"),
    (["train.betas=0.5"], "'train.betas' must be a list"),
    (["model.arch=vae"], "model.arch must be one of"),
    (["train.epochs=0"], "train.epochs must be >= 1"),
    (["train.epochs"], "must look like key.sub=value"),
    (["train.epochs.x=1"], "'epochs' is not a section"),
])
def test_bad_recipes_fail_with_one_clear_message(overrides, message):
    with pytest.raises(GenlabError, match=message):
        load_recipe("essay-mlp-mnist", overrides)


def test_section_must_be_a_mapping():
    with pytest.raises(GenlabError, match="'train' must be a mapping"):
        from_dict(GanRecipe, {"train": 3})


def test_unknown_recipe_name():
    with pytest.raises(GenlabError, match="not found"):
        load_recipe("no-such-recipe")


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
