"""A glyph-translation run opened for use: draw text or a glyph image in a learned font; score it."""

from __future__ import annotations

from typing import Any

import torch

from genlab.core.run import CostMeter, RunDir
from genlab.data.glyphs import GlyphSet
from genlab.errors import GenlabError
from genlab.evaluation.glyph_judges import glyph_judges, score_glyphs, ssim
from genlab.interop.onnx import ExportGraph
from genlab.io.images import GeneratedImages
from genlab.tasks.contract import ImageGeneratorRun
from genlab.tasks.pix2pix.inputs import read_glyph, text_glyphs
from genlab.tasks.pix2pix.pipeline import load_library, load_lora_generator, load_pair, translate
from genlab.tasks.pix2pix.recipe import Pix2PixRecipe

MAX_GLYPHS = 1000


class Pix2PixRun(ImageGeneratorRun):
    eval_section = "translation"

    def __init__(self, run: RunDir, recipe: Pix2PixRecipe, checkpoint: str = "last"):
        super().__init__(run, recipe, checkpoint)
        self.generator, _, meta = load_pair(run, checkpoint)
        if meta.get("lora") and checkpoint == "last":  # as shipped: the LoRA delta on its start run
            self.generator = load_lora_generator(run.path / "adapter")
        self.config, self.source = self.generator.config, meta["source"]

    @property
    def class_names(self) -> list[str]:
        """The fonts it draws, in style-vector order (the images endpoint's labels)."""
        return list(self.config.fonts)

    def _font_id(self, font: str | None, label: int | None) -> int:
        fonts = self.config.fonts
        if font is not None and label is not None:
            raise GenlabError("give --font or --label, not both")
        if font is not None:
            if font not in fonts:
                raise GenlabError(f"this run draws the fonts {', '.join(fonts)}, not '{font}'")
            return fonts.index(font)
        if label is not None and not 0 <= label < len(fonts):
            raise GenlabError(f"--label must be in 0..{len(fonts) - 1} ({', '.join(fonts)}), got {label}")
        # default: the recipe's first target (a few-shot run: its new font)
        return label if label is not None else fonts.index(self.recipe.data.targets[0])

    def _held_out(self, n: int) -> torch.Tensor:
        if not 1 <= n <= MAX_GLYPHS:
            raise GenlabError(f"--n must be in 1..{MAX_GLYPHS}, got {n}")
        data = self.recipe.data
        glyphs = load_library(data)
        chars = glyphs.split("test")[:n]
        return torch.from_numpy(glyphs.ink[glyphs.index(self.source), chars]).unsqueeze(1)

    def generate(
        self,
        text: str | None = None,
        font: str | None = None,
        input: str | None = None,
        n: int = 8,
        label: int | None = None,
    ) -> GeneratedImages:
        """`text` drawn as one line in `font` (default: the recipe's first target; or `label`, its index),
        each character rendered in the source font and translated; or the glyph image `input`; or else the
        first n held-out characters. Black ink on white in [0, 1]: the line as one image (1, 1, S, len(text) S),
        else glyphs (N, 1, S, S).

        Args:
            input: a glyph image to translate into the font (instead of `text`)
        """
        font_id = self._font_id(font, label)
        if text is not None and input is not None:
            raise GenlabError("give --text or --input, not both")
        size = self.config.size
        if text is not None and self.recipe.data.kind != "glyphs":
            raise GenlabError(f"this run draws {self.recipe.data.kind} pictures, not text: give --input or --n")
        if text is not None:
            sources = text_glyphs(text, self.source, size)
        elif input is not None:
            sources = read_glyph(input, size)
        else:
            sources = self._held_out(n)
        made = 1 - translate(self.generator, sources, torch.full((len(sources),), font_id))  # (N, 1, S, S)
        if text is not None:  # one image: the line, its glyphs side by side (1, 1, S, N S)
            made = torch.cat(list(made), dim=-1).unsqueeze(0)
        return GeneratedImages(made, nrow=len(made))

    def generate_images(self, requests: list[dict[str, Any]]) -> list[GeneratedImages]:
        """The images endpoint: the line `text` (one image), else n held-out characters, in the font `label`
        (the endpoint's seed changes nothing: the translator is deterministic)."""
        return [self.generate(text=r.get("text"), n=r.get("n", 8), label=r.get("label")) for r in requests]

    def export_graph(self) -> ExportGraph:
        """The generator: source glyphs and target-font ids -> glyphs."""
        size, fonts = self.config.size, self.config.fonts

        def example(batch: int) -> dict[str, torch.Tensor]:
            rng = torch.Generator().manual_seed(batch)
            return {
                "source": torch.rand(batch, 1, size, size, generator=rng),
                "fonts": torch.arange(batch) % len(fonts),
            }

        notes = {
            "source": f"glyphs of the source font {self.source}, ink (batch, 1, {size}, {size}) in [0, 1] (0 = paper)",
            "fonts": f"target-font ids 0..{len(fonts) - 1}: {', '.join(fonts)}",
            "glyphs": f"the glyphs in the target fonts, ink (batch, 1, {size}, {size}) in [0, 1]",
        }
        return ExportGraph(self.generator, example, "glyphs", notes=notes)

    def translated_pairs(self, glyphs: GlyphSet, part: str = "test") -> dict[str, torch.Tensor]:
        """Every (target font, held-out character) pair (or training character, with part="train"), font by
        font: the source glyph, the glyph made from it, the true glyph (N, 1, S, S) ink, and the font (library
        index) and character asked for (N,)."""
        targets = self.recipe.data.targets
        test = torch.as_tensor(glyphs.split(part))
        ink = torch.from_numpy(glyphs.ink).unsqueeze(2)  # (F, C, 1, S, S)
        source = ink[glyphs.index(self.source), test].repeat(len(targets), 1, 1, 1)  # (T n, 1, S, S)
        ids = torch.tensor([self.config.fonts.index(f) for f in targets]).repeat_interleave(len(test))
        return {
            "source": source,
            "made": translate(self.generator, source, ids),
            "truth": torch.cat([ink[glyphs.index(f), test] for f in targets]),
            "fonts": torch.tensor([glyphs.index(f) for f in targets]).repeat_interleave(len(test)),
            "chars": test.repeat(len(targets)),
        }

    def evaluate(self) -> dict[str, Any]:
        """The held-out characters of each of the recipe's target fonts, translated from the source font and
        scored against the true glyphs (L1, SSIM, the font and character judges, FID in the character judge's
        features), beside the same scores of copying the source glyph; for Fashion-MNIST items, L1 and SSIM
        beside copying the edge map and drawing the mean training item. Written to report.json as
        `translation`."""
        data, meter = self.recipe.data, CostMeter()
        glyphs = load_library(data)
        p = self.translated_pairs(glyphs)
        metrics = self._judged(glyphs, p) if data.kind == "glyphs" else _picture_scores(glyphs, p)
        metrics.update(
            fonts=list(data.targets),
            test_chars=len(glyphs.split("test")),
            checkpoint=self.checkpoint,
            eval_seconds=meter.snapshot()["wall_seconds"],
        )
        self.run.update_report(self.eval_section, metrics)
        return metrics

    def _judged(self, glyphs: GlyphSet, p: dict[str, torch.Tensor]) -> dict[str, Any]:
        """The glyph scores, overall and per target font, with the judges' own record."""
        judges = glyph_judges(glyphs, self.recipe.eval.judge_epochs, seed=self.recipe.seed)
        metrics: dict[str, Any] = score_glyphs(p["made"], p["truth"], p["fonts"], p["chars"], judges)
        metrics["copy_source"] = score_glyphs(p["source"], p["truth"], p["fonts"], p["chars"], judges)
        n = len(glyphs.split("test"))
        metrics["per_font"] = {
            font: score_glyphs(*(p[k][i * n : (i + 1) * n] for k in ("made", "truth", "fonts", "chars")), judges)
            for i, font in enumerate(self.recipe.data.targets)
        }
        # the same scores on characters the generator trained on: how far held-out ones fall behind them
        seen = self.translated_pairs(glyphs, "train")
        metrics["train_chars"] = score_glyphs(seen["made"], seen["truth"], seen["fonts"], seen["chars"], judges)
        return {**metrics, "judges": judges.info}


def _picture_scores(pictures: GlyphSet, p: dict[str, torch.Tensor]) -> dict[str, Any]:
    """L1 and SSIM to the true pictures of what was made, of copying the source (the edge map) and of the
    mean training picture of the target (the best a model that ignores its input could do on L1 alone)."""
    truth = p["truth"]
    mean = torch.from_numpy(pictures.ink[-1, pictures.split("train")].mean(0))[None, None].expand_as(truth)

    def scores(made: torch.Tensor) -> dict[str, float]:
        return {"l1": (made - truth).abs().mean().item(), "ssim": ssim(1 - made, 1 - truth).mean().item()}

    return {**scores(p["made"]), "copy_source": scores(p["source"]), "mean_target": scores(mean.contiguous())}
