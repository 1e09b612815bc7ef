"""An audio run opened for use: its generator (last or best checkpoint), clips of one digit or of a
spoken digit sequence, and scoring against the held-out test split."""

from __future__ import annotations

from typing import Any

import torch

from genlab.core.checkpoint import load_network
from genlab.core.run import CostMeter, RunDir
from genlab.data.audio import load_audio_dataset
from genlab.errors import GenlabError
from genlab.evaluation.audio_eval import evaluate_clips, load_audio_evaluator
from genlab.interop.onnx import ExportGraph, generator_graph
from genlab.io.audio_clips import GeneratedAudio
from genlab.models.audio_gan import AudioGANConfig, build_audio_gan
from genlab.tasks.audio.process import check_request, cycle_labels, draw_spectrograms, to_waves
from genlab.tasks.audio.recipe import AudioRecipe
from genlab.tasks.audio.spectrogram import join_words, log_mel_image, trim_word
from genlab.tasks.contract import RunHandle

EVAL_SEED = 1234  # the noise of `evaluate`, so that two evaluations of one checkpoint agree
MAX_WORDS = 50  # digits in one `text` clip
SPECTROGRAMS_MEAN = (  # the exported generator's output
    "log-mel images (batch, 1, 64 mel bands, 64 frames) in [-1, 1], low frequencies in row 0; "
    "genlab.tasks.audio.process.to_waves (Griffin-Lim) makes 1 s of 16 kHz audio of each"
)


def parse_text(text: str, class_names: list[str]) -> list[int]:
    """ "4 0 7" or "four zero seven" (space-separated digits or class names) -> label ids."""
    words = text.lower().replace(",", " ").split()
    if not words:
        raise GenlabError('--text is empty: pass digits or digit words, e.g. --text "4 0 7"')
    if len(words) > MAX_WORDS:
        raise GenlabError(f"--text has {len(words)} words; at most {MAX_WORDS} in one clip")
    labels = []
    for word in words:
        if word in class_names:
            labels.append(class_names.index(word))
        elif word.isdecimal() and int(word) < len(class_names):
            labels.append(int(word))
        else:
            raise GenlabError(f"--text: '{word}' is not a digit or one of: {', '.join(class_names)}")
    return labels


class AudioRun(RunHandle):
    eval_section = "quality"
    output_suffixes = (".wav", "")  # "": a folder (several clips); one clip may also go to FILE.wav
    endpoint = "audio"

    def __init__(self, run: RunDir, recipe: AudioRecipe, checkpoint: str = "last"):
        super().__init__(run, recipe, checkpoint)
        self.config, self.generator, meta, folder = load_network(
            run, checkpoint, "audio", AudioGANConfig, lambda config: build_audio_gan(config)[0], "generator"
        )
        names = meta.get("class_names")
        if not isinstance(names, list) or len(names) != self.config.num_classes:
            raise GenlabError(f"{folder / 'meta.json'} does not name the run's {self.config.num_classes} classes")
        self._class_names = [str(name) for name in names]

    @property
    def class_names(self) -> list[str]:
        return list(self._class_names)

    def export_graph(self) -> ExportGraph:
        """The generator: noise z and digit labels -> log-mel spectrogram images (the vocoder stays outside)."""
        return generator_graph(
            self.generator, self.config.latent_dim, self.class_names, "spectrograms", SPECTROGRAMS_MEAN
        )

    def _request(self, n: int, label: int | None, seed: int, text: str | None) -> tuple[torch.Tensor, bool]:
        """The labels one generate call draws, and whether they are one `text` clip."""
        if text is not None:
            if label is not None:
                raise GenlabError("pass --label or --text, not both")
            return torch.tensor(parse_text(text, self._class_names)), True
        check_request(n, label, self.config.num_classes)
        return cycle_labels(n, label, self.config.num_classes), False

    def _result(self, waves: torch.Tensor, labels: torch.Tensor, is_text: bool) -> GeneratedAudio:
        names = [self._class_names[i] for i in labels.tolist()]
        if is_text:  # the words, trimmed of their silence, joined with short gaps: one clip
            clips, words = [join_words([trim_word(w) for w in waves])], [" ".join(names)]
        else:
            clips, words = list(waves), names
        return GeneratedAudio(clips, words, [log_mel_image(c[None], frames=None)[0] for c in clips])

    def generate(self, n: int = 10, label: int | None = None, seed: int = 0, text: str | None = None) -> GeneratedAudio:
        """n one-second clips of `label` (else the digits in turn), or, with `text` ("4 0 7" or
        "four zero seven"), one clip of those digits spoken in sequence (n is then unused)."""
        return self.generate_audio([{"n": n, "label": label, "seed": seed, "text": text}])[0]

    def generate_audio(self, requests: list[dict[str, Any]]) -> list[GeneratedAudio]:
        """Several generate calls; the clips of all of them go through Griffin-Lim as one batch."""
        drawn = [self._request(r.get("n", 10), r.get("label"), r.get("seed", 0), r.get("text")) for r in requests]
        specs = [draw_spectrograms(self.generator, labels, r.get("seed", 0)) for r, (labels, _) in zip(requests, drawn)]
        waves = to_waves(torch.cat(specs), self.recipe.eval.griffin_lim_iters, self.recipe.eval.batch_size)
        results, start = [], 0
        for labels, is_text in drawn:
            results.append(self._result(waves[start : start + len(labels)], labels, is_text))
            start += len(labels)
        return results

    def evaluate(self, n: int | None = None) -> dict[str, Any]:
        """Label accuracy, Fréchet distance and Inception-style score of n clips (default eval.num_samples,
        the digits in turn) through Griffin-Lim, against the held-out test split; written to report.json
        as `quality`."""
        recipe = self.recipe
        n = recipe.eval.num_samples if n is None else n
        check_request(n, None, self.config.num_classes)
        reference = load_audio_dataset(recipe.data.name, "test", recipe.data.path)
        evaluator = load_audio_evaluator()
        meter = CostMeter()
        labels = cycle_labels(n, None, self.config.num_classes)
        specs = draw_spectrograms(self.generator, labels, EVAL_SEED)
        waves = to_waves(specs, recipe.eval.griffin_lim_iters, recipe.eval.batch_size)
        metrics = evaluate_clips(waves, evaluator, requested_labels=labels, reference=reference)
        metrics["checkpoint"] = self.checkpoint
        metrics["griffin_lim_iters"] = recipe.eval.griffin_lim_iters
        metrics["eval_seconds"] = meter.snapshot()["wall_seconds"]
        self.run.update_report(self.eval_section, metrics)
        return metrics
