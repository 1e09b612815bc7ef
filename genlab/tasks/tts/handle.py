"""A text-to-speech run opened for use: its converter, a sentence said in Allison's voice (`text`) or a
recording converted into it (`input`), and its mel-cepstral distortion on held-out sentences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from genlab.core.checkpoint import load_network
from genlab.core.run import CostMeter, RunDir
from genlab.data.speech import RATE, load_prompts, synthesize
from genlab.data.speech_features import log_mel, mel_cepstral_distortion
from genlab.data.speech_pairs import TARGET_ALLISON, target_frames
from genlab.errors import GenlabError
from genlab.interop.onnx import ExportGraph
from genlab.io.audio import SAMPLE_RATE, read_wav, resample
from genlab.io.audio_clips import GeneratedAudio
from genlab.models.voice_converter import ConverterConfig, VoiceConverter
from genlab.tasks.contract import RunHandle
from genlab.tasks.tts.process import Vocoder, convert_frames, convert_wave, mel_image, speak
from genlab.tasks.tts.recipe import SpeechRecipe
from genlab.tasks.tts.training import SAMPLE_TEXT

INPUT_RATES = (RATE, SAMPLE_RATE)  # 8 kHz (the corpus) and 16 kHz (genlab's own output)
MAX_INPUT_SECONDS = 60


def read_input(path: str) -> np.ndarray:
    """A recording to convert: (T,) at RATE, or one line saying what is wrong with the file."""
    samples, rate = read_wav(Path(path))
    if rate not in INPUT_RATES:
        raise GenlabError(
            f"--input {path} is sampled at {rate} Hz; give 8000 or 16000 Hz (e.g. `sox {path} -r 16000 out.wav`)"
        )
    if len(samples) > MAX_INPUT_SECONDS * rate:
        raise GenlabError(f"--input {path} lasts {len(samples) / rate:.0f} s; at most {MAX_INPUT_SECONDS} s")
    return resample(samples, rate, RATE)


class SpeechRun(RunHandle):
    eval_section = "speech"
    output_suffixes = (".wav", "")
    endpoint = "audio"

    def __init__(self, run: RunDir, recipe: SpeechRecipe, checkpoint: str = "last"):
        super().__init__(run, recipe, checkpoint)
        self.config, self.converter, meta, folder = load_network(
            run, checkpoint, "tts", ConverterConfig, VoiceConverter, "converter"
        )
        voices = meta.get("voices")
        if not isinstance(voices, list) or not voices or not isinstance(meta.get("rate_wpm"), int):
            raise GenlabError(f"{folder / 'meta.json'} does not name the run's voices and rate_wpm")
        self.voices, self.rate_wpm = [str(v) for v in voices], int(meta["rate_wpm"])
        self.target = str(meta.get("target", TARGET_ALLISON))  # runs from before the choice existed: Allison
        self.vocoder = Vocoder(recipe.eval.vocoder, self.target, self.rate_wpm, recipe.eval.griffin_lim_iters)

    @property
    def class_names(self) -> list[str]:
        return []  # one voice: nothing to choose by label

    def generate(self, text: str | None = None, input: str | None = None) -> GeneratedAudio:  # noqa: A002
        """`text` said in the run's voice (default: a sample sentence), or the recording `input` (a WAV at 8
        or 16 kHz, any speaker) converted into it: one 16 kHz clip."""
        if input is not None:
            if text is not None:
                raise GenlabError("give --text or --input, not both")
            wave, frames = convert_wave(self.converter, read_input(input), self.vocoder)
            words = Path(input).stem
        else:
            words = SAMPLE_TEXT if text is None else text
            wave, frames = speak(self.converter, self.voices[0], words, self.rate_wpm, self.vocoder)
        return GeneratedAudio([torch.from_numpy(wave)], [words], [mel_image(frames)])

    def generate_audio(self, requests: list[dict[str, Any]]) -> list[GeneratedAudio]:
        """The audio endpoints: each request's `text` (or `input`) as one clip; `n`, `label`, `seed` unused."""
        return [self.generate(text=r.get("text"), input=r.get("input")) for r in requests]

    def evaluate(self, n: int | None = None) -> dict[str, Any]:
        """Mel-cepstral distortion (dB, DTW-aligned) to the target voice (Allison's recordings, or the synthetic
        target saying them) on the first n held-out sentences (default eval.num_prompts): the converted speech,
        and the unconverted front-end voice beside it."""
        n = self.recipe.eval.num_prompts if n is None else n
        if n < 1:
            raise GenlabError(f"--n must be at least 1, got {n}")
        meter = CostMeter()
        converted, unconverted = [], []
        for prompt in load_prompts("test")[:n]:
            real = target_frames(self.target, prompt, self.rate_wpm)
            source = log_mel(synthesize(self.voices[0], prompt.text, self.rate_wpm))
            converted.append(mel_cepstral_distortion(convert_frames(self.converter, source), real))
            unconverted.append(mel_cepstral_distortion(source, real))
        metrics = {
            "mcd_db": round(float(np.mean(converted)), 3),
            "mcd_unconverted_db": round(float(np.mean(unconverted)), 3),
            "prompts": len(converted),
            "voice": self.voices[0],
            "target": self.target,
            "checkpoint": self.checkpoint,
            "eval_seconds": meter.snapshot()["wall_seconds"],
        }
        self.run.update_report(self.eval_section, metrics)
        return metrics

    def export_graph(self) -> ExportGraph:
        """The converter: log-mel frames of the front-end voice -> log-mel frames in the run's voice."""
        n_mels = self.config.n_mels

        def example(batch: int) -> dict[str, torch.Tensor]:
            return {"frames": torch.randn(batch, 50, n_mels, generator=torch.Generator().manual_seed(batch)) - 3}

        return ExportGraph(
            self.converter,
            example,
            "converted",
            dynamic={"frames": {1: ("frames", 6000)}},
            output_axes={1: "frames"},
            notes={
                "frames": f"(batch, frames, {n_mels}) natural-log mel power at 8 kHz, 10 ms hops "
                "(genlab.data.speech_features.log_mel)",
                "converted": "the same frames in the run's voice; genlab.data.speech_vocoder.world_vocode (with the "
                "input's pitch), genlab.data.speech_features.griffin_lim or filter_toward (with the input) makes audio",
            },
        )
