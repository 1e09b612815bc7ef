"""Judge a voice-conversion run on held-out sentences: does the converted speech sound like the target voice,
and does it keep the words? The voice-conversion figures quoted in docs/speech.md.

    genlab train vc-flite-to-allison eval.vocoder=world --out runs/vc-flite
    GENLAB_THREADS=1 python benchmarks/vc_benchmark.py runs/vc-flite --input-voice flite:slt \
        --systems input converted converted-gl converted-diff target \
        --out benchmarks/results/speech/vc-flite-only-to-allison.json
    genlab train vc-espeak-to-flite eval.vocoder=griffin-lim --out runs/vc-espeak-to-flite
    GENLAB_THREADS=1 python benchmarks/vc_benchmark.py runs/vc-espeak-to-flite \
        --systems input input-gl converted converted-diff target \
        --out benchmarks/results/speech/vc-espeak-to-flite.json

For every held-out sentence (genlab.data.speech's test split, never trained on) the input voice says it, the
run converts it, and the target voice (the run's data.target: Allison's recording, or a synthetic voice) is the
reference. Systems: `input` (raw), `input-gl` and `input-world` (its frames through Griffin-Lim, or through
WORLD with its own pitch: each vocoder alone), `converted` (with the run's vocoder, its eval.vocoder:
docs/speech.md picks it per run: world or griffin-lim), `converted-gl` (converted, through Griffin-Lim),
`converted-diff` (the input recording filtered toward the converted envelope: the spectral-differential vocoder),
`target` (the target voice itself). Measures: MCD (dB, DTW-aligned) to the target voice; open-vocabulary WER
by PocketSphinx's bundled language model (jiwer, corpus-level, every held-out sentence), with a bootstrap 90 %
interval of each system's / the input's WER ratio over sentences; sentence identification by the grammar of
the corpus's sentences.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

import genlab
from genlab.data.speech import load_prompts, read_prompt, synthesize
from genlab.data.speech_features import filter_toward, griffin_lim, log_mel, mel_cepstral_distortion
from genlab.data.speech_pairs import TARGET_ALLISON, target_frames
from genlab.evaluation.speech import SentenceJudge, spoken_words, word_error_rate, world_channel
from genlab.io.files import atomic_write_text
from genlab.tasks.tts.process import convert_frames

SYSTEMS = ("input", "input-gl", "input-world", "converted", "converted-gl", "converted-diff", "target")


def renderings(handle, voice: str, prompt, iters: int) -> dict[str, np.ndarray]:
    """Each system's (T,) waveform at RATE for one prompt (Griffin-Lim is cheap beside the recogniser)."""
    source = synthesize(voice, prompt.text, handle.rate_wpm)
    frames = log_mel(source)
    converted = convert_frames(handle.converter, frames)
    target = read_prompt(prompt) if handle.target == TARGET_ALLISON else None
    return {
        "input": source,
        "input-gl": griffin_lim(frames, iters),
        "input-world": world_channel(handle.vocoder.profile)(source),
        "converted": handle.vocoder(converted, source),
        "converted-gl": griffin_lim(converted, iters),
        "converted-diff": filter_toward(converted, source),
        "target": target if target is not None else synthesize(handle.target, prompt.text, handle.rate_wpm),
    }


def sentence_errors(reference: str, hypothesis: str) -> tuple[float, int]:
    """(word errors, reference words) of one sentence, so a corpus WER is sum(errors) / sum(words)."""
    words = len(spoken_words(reference).split())
    return word_error_rate([reference], [hypothesis]) * words, words


def ratio_interval(errors: dict[str, list], system: str = "converted", seed: int = 0, draws: int = 2000) -> list[float]:
    """A 90 % bootstrap interval (sentences resampled) of corpus WER(system) / corpus WER(input)."""
    conv, inp = np.asarray(errors[system]), np.asarray(errors["input"])  # (S, 2) errors, words each
    rng = np.random.default_rng(seed)
    ratios = []
    for _ in range(draws):
        pick = rng.integers(0, len(conv), len(conv))
        ratios.append(conv[pick, 0].sum() / max(inp[pick, 0].sum(), 1e-9))
    return [round(float(q), 3) for q in np.quantile(ratios, [0.05, 0.95])]


def judge(args: argparse.Namespace) -> dict:
    handle = genlab.load(args.run)
    voice = args.input_voice or handle.voices[0]
    iters = handle.recipe.eval.griffin_lim_iters
    prompts = load_prompts("test")[: args.prompts or None]
    judge_ = SentenceJudge([p.text for p in load_prompts()])
    mcd = {s: [] for s in args.systems if s != "target"}
    errors = {s: [] for s in args.systems}
    hits = {s: [] for s in args.systems}
    for i, prompt in enumerate(prompts):
        clips = renderings(handle, voice, prompt, iters)
        reference = target_frames(handle.target, prompt, handle.rate_wpm)
        for system, wave in ((s, w) for s, w in clips.items() if s in args.systems):
            if system in mcd:
                mcd[system].append(mel_cepstral_distortion(log_mel(wave), reference))
            errors[system].append(sentence_errors(prompt.text, judge_.transcribe(wave)))
            if judge_.knows(prompt.text):
                hits[system].append(judge_.identify(wave) == spoken_words(prompt.text))
        print(f"{i + 1}/{len(prompts)} {prompt.name}", flush=True)
    wer = {s: round(sum(e for e, _ in v) / sum(w for _, w in v), 4) for s, v in errors.items()}
    return {
        "run": str(args.run),
        "input_voice": voice,
        "target": handle.target,
        "held_out_sentences": len(prompts),
        "mcd_db": {s: round(float(np.mean(v)), 3) for s, v in mcd.items()},
        "wer": wer,
        "wer_ratio_converted_to_input": round(wer["converted"] / wer["input"], 3),
        "wer_ratio_90pct_bootstrap": ratio_interval(errors),
        "wer_ratio_to_input": {s: round(wer[s] / wer["input"], 3) for s in wer},
        "wer_ratio_to_input_90pct_bootstrap": {s: ratio_interval(errors, s) for s in wer if s != "input"},
        "vocoder": handle.recipe.eval.vocoder,
        "identified_sentences": len(hits["input"]),
        "identification": {s: round(float(np.mean(h)), 4) for s, h in hits.items()},
        "threads": int(os.environ.get("GENLAB_THREADS", "0") or 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--input-voice", default=None, help="ENGINE:NAME converted (default: the run's first voice)")
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS, help="systems judged")
    parser.add_argument("--prompts", type=int, default=0, help="held-out sentences judged (0: all)")
    parser.add_argument("--out", required=True, help="the results' JSON file")
    args = parser.parse_args()
    if not {"input", "converted"} <= set(args.systems):
        parser.error("--systems must include input and converted (the WER ratio compares them)")
    started = time.process_time()
    results = judge(args)
    results["cpu_seconds"] = round(time.process_time() - started, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
