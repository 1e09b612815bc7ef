"""The converter's training: L1 between the converted frames of a synthetic voice and the target voice's
frames (Allison's, or data.target's) that DTW matched to them (genlab.data.speech_pairs), on 0.64 s windows,
with AdamW and a cosine decay.

The examples are windows of aligned frames (N, chunk_frames, n_mels), made once from the training prompts;
steps draw nothing at random (the loop's seeded order picks the windows), so `rng_state` is empty.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from genlab.core.distributed import DistEnv, wrap_ddp
from genlab.core.optim import adamw, descend, set_lr
from genlab.core.run import RunDir
from genlab.core.training import NoRandomState, SampledEachPeriod, weights_meta
from genlab.data.speech import check_text, load_prompts, parse_voice
from genlab.data.speech_pairs import TARGET_ALLISON, parallel_pairs
from genlab.errors import GenlabError
from genlab.io.audio_clips import GeneratedAudio
from genlab.models.voice_converter import VoiceConverter
from genlab.tasks.tts.process import Vocoder, mel_image, speak
from genlab.tasks.tts.recipe import SpeechRecipe

SAMPLE_TEXT = "Your call is important to us."


class SpeechTraining(NoRandomState, SampledEachPeriod):
    best_metric = None  # no quick score: `genlab eval` and benchmarks/speech_benchmark.py judge the speech

    def __init__(self, recipe: SpeechRecipe, env: DistEnv, run: RunDir):
        d = recipe.data
        for voice in [*d.voices, *([] if d.target == TARGET_ALLISON else [d.target])]:
            parse_voice(voice)  # one line now if an engine is missing, before anything is written
        prompts = load_prompts("train")
        prompts = prompts[: d.limit] if d.limit else prompts
        pairs = parallel_pairs(d.voices, prompts, d.rate_wpm, d.target)
        source, target = pairs.chunks(d.chunk_frames)  # (N, chunk_frames, n_mels) each
        if recipe.model.n_mels != source.shape[2]:
            raise GenlabError(f"model.n_mels must be {source.shape[2]}, the frames' mel bands")
        self.recipe, self.env, self.config = recipe, env, recipe.model
        torch.manual_seed(recipe.seed)  # identical initial weights on every rank
        model = VoiceConverter(recipe.model).to(env.device)
        self.model, self.net = model, wrap_ddp(model, env)
        self.modules: dict[str, torch.nn.Module] = {"converter": model}
        self.optimizers = {"converter": adamw(model, recipe.train.lr, [0.9, 0.99], weight_decay=0.0)}
        self.source = torch.from_numpy(source).to(env.device)
        self.target = torch.from_numpy(target).to(env.device)
        self.num_examples = len(self.source)
        self.total_steps = recipe.train.epochs * max(1, self.num_examples // d.batch_size)
        self.evaluator = None
        self.data_source = (
            f"{len(prompts)} Allison prompts x {len(d.voices)} voices ({', '.join(d.voices)}) -> {d.target}"
        )
        check_text(SAMPLE_TEXT)

    def meta(self) -> dict[str, Any]:
        d = self.recipe.data
        return weights_meta(
            "tts", self.config, dataset=d.name, voices=list(d.voices), rate_wpm=d.rate_wpm, target=d.target
        )

    def step_kind(self, step: int) -> str:
        return "convert"

    def train_step(self, indices: torch.Tensor, step: int) -> dict[str, float]:
        t = self.recipe.train
        indices = indices.to(self.source.device)
        # Cosine decay to a tenth of the rate over the whole run: the late steps polish, they do not jump.
        progress = min(1.0, step / max(1, self.total_steps))
        set_lr(self.optimizers["converter"], t.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * progress))))
        predicted = self.net(self.source.index_select(0, indices))  # (B, chunk_frames, n_mels)
        loss = (predicted - self.target.index_select(0, indices)).abs().mean()
        grad_norm = descend(self.optimizers["converter"], self.model, loss, t.grad_clip)
        return {"loss/l1": loss.item(), "grad_norm": grad_norm}

    def save_samples(self, period: int, run: RunDir) -> None:
        """samples/epoch_NNNN/00-your-call-is-important-to-us.wav and its spectrogram."""
        d, e = self.recipe.data, self.recipe.eval
        vocoder = Vocoder(e.vocoder, d.target, d.rate_wpm, e.griffin_lim_iters)
        wave, frames = speak(self.model, d.voices[0], SAMPLE_TEXT, d.rate_wpm, vocoder)
        clip = GeneratedAudio([torch.from_numpy(wave)], [SAMPLE_TEXT], [mel_image(frames)])
        clip.save(run.samples_dir / f"epoch_{period:04d}")
