"""Judge a text-to-speech run on held-out Allison sentences: the figures quoted in docs/speech.md.

    genlab train tts-allison eval.vocoder=world --out runs/tts
    GENLAB_THREADS=1 python benchmarks/speech_benchmark.py runs/tts --out benchmarks/results/speech \
        --figure docs/img/speech-spectrograms.png --wavs docs/audio
    GENLAB_THREADS=1 python benchmarks/speech_benchmark.py runs/tts --rtf-only   # alone on the machine
    GENLAB_THREADS=1 python benchmarks/speech_benchmark.py runs/tts --speaker-only  # only the speaker judges

Systems, each on every held-out sentence (genlab.data.speech's test split, whole sentences never trained on):
  real         Allison's recording                       espeak-ng    the front end's own voice (raw)
  real-gl      her frames through Griffin-Lim            espeak-gl    espeak-ng's frames through Griffin-Lim
  real-world   her frames and pitch through WORLD        flite        flite slt (raw)
  tts          espeak-ng converted, the run's vocoder    tts-gl       espeak-ng converted, Griffin-Lim
  vc-flite     flite slt converted, the run's vocoder    vc-flite-gl  flite slt converted, Griffin-Lim
  tts-diff, vc-flite-diff   the rendering filtered toward its converted envelope (the spectral-differential vocoder)
(the run's vocoder is its eval.vocoder; docs/speech.md judges a run trained with eval.vocoder=world, WORLD with
the rendering's pitch moved into Allison's range, so that tts and tts-gl compare the two vocoders.)
Measures: sentence identification by PocketSphinx constrained to the corpus's sentences (JSGF), open-vocabulary
WER (jiwer) on the first --wer-prompts sentences, MCD (dB, DTW-aligned) to the recording, the share three speaker
classifiers (real Allison vs synthetic voices, trained on training prompts) label as Allison, and the real-time
factor of `generate` on one core for a sentence of about 5 seconds. The speaker classifiers: "plain" learns the
clips as recorded; the two "channel-robust" ones learn each training clip of both classes as recorded and through
one vocoder's analysis/resynthesis (Griffin-Lim, or WORLD), so that vocoder carries no label (the sanity rows:
real-gl and real-world should be labelled Allison, espeak-gl not).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import textwrap
import time
from pathlib import Path

import numpy as np

import genlab
from genlab.data.speech import RATE, load_prompts, read_prompt, synthesize
from genlab.data.speech_features import filter_toward, griffin_lim, log_mel, mel_cepstral_distortion
from genlab.data.speech_vocoder import VoiceProfile
from genlab.evaluation.speech import (
    SentenceJudge,
    SpeakerClassifier,
    griffin_lim_channel,
    spoken_words,
    word_error_rate,
    world_channel,
)
from genlab.io.audio import resample, write_wav
from genlab.io.files import atomic_write_text
from genlab.tasks.tts.process import convert_frames

SYSTEMS = (
    "real",
    "real-gl",
    "real-world",
    "espeak-ng",
    "espeak-gl",
    "tts",
    "tts-gl",
    "tts-diff",
    "flite",
    "vc-flite",
    "vc-flite-gl",
    "vc-flite-diff",
)
# open-vocabulary decoding is the slow part
WER_SYSTEMS = tuple(s for s in SYSTEMS if s != "espeak-gl")
# Synthetic voices the speaker classifier learns as "not Allison": the two converted voices among them.
CLASSIFIER_VOICES = ("espeak-ng:en-us+f3", "flite:slt", "espeak-ng:en-us+f1", "espeak-ng:en-gb+f4", "flite:kal")
# Sanity rows for the speaker judges only: a voice the judges learnt as "not Allison" and one they never heard,
# each through Griffin-Lim (a good judge labels neither Allison, whatever the channel).
SPEAKER_SANITY = {"flite-gl": "flite:slt", "unseen-gl": "espeak-ng:en-us+f2"}
WORLD_SANITY = {"flite-world": "flite:slt", "unseen-world": "espeak-ng:en-us+f2"}  # the same, through WORLD
RTF_TEXT = "Please enter your password, followed by the pound key, and then wait for the tone."


def renderings(handle, prompt, iters: int) -> dict[str, np.ndarray]:
    """Every system's (T,) waveform at RATE for one prompt."""
    real = read_prompt(prompt)
    espeak = synthesize(handle.voices[0], prompt.text, handle.rate_wpm)
    flite = synthesize("flite:slt", prompt.text)
    tts, vc = convert_frames(handle.converter, log_mel(espeak)), convert_frames(handle.converter, log_mel(flite))
    return {
        "real": real,
        "real-gl": griffin_lim(log_mel(real), iters),
        "real-world": world_channel(handle.vocoder.profile)(real),
        "espeak-ng": espeak,
        "espeak-gl": griffin_lim(log_mel(espeak), iters),
        "tts": handle.vocoder(tts, espeak),
        "tts-gl": griffin_lim(tts, iters),
        "tts-diff": filter_toward(tts, espeak),
        "flite": flite,
        "vc-flite": handle.vocoder(vc, flite),
        "vc-flite-gl": griffin_lim(vc, iters),
        "vc-flite-diff": filter_toward(vc, flite),
    }


def speaker_classifiers(train_prompts: list, n: int, iters: int, profile: VoiceProfile) -> dict[str, SpeakerClassifier]:
    """Real Allison (n training prompts) against the synthetic voices saying n training prompts in turn: the
    plain judge, and the channel-robust ones that also learn every clip through Griffin-Lim (iters) or WORLD."""
    prompts = train_prompts[:: max(1, len(train_prompts) // n)][:n]
    real = [read_prompt(p) for p in prompts]
    fake = [synthesize(CLASSIFIER_VOICES[i % len(CLASSIFIER_VOICES)], p.text) for i, p in enumerate(prompts)]
    return {
        "labelled_allison": SpeakerClassifier(real, fake),
        "labelled_allison_channel_robust": SpeakerClassifier(real, fake, channel=griffin_lim_channel(iters)),
        "labelled_allison_world_robust": SpeakerClassifier(real, fake, channel=world_channel(profile)),
    }


def speaker_labels(
    classifiers: dict[str, SpeakerClassifier], clips_by_prompt: dict, prompts: list, iters: int, profile: VoiceProfile
) -> dict:
    """{judge: {system: share of held-out clips labelled Allison}} plus each judge's training-clip count; the
    systems are SYSTEMS and the sanity voices through Griffin-Lim and WORLD."""
    clips = {s: [c[s] for c in clips_by_prompt.values()] for s in SYSTEMS}
    for row, voice in SPEAKER_SANITY.items():
        clips[row] = [griffin_lim(log_mel(synthesize(voice, p.text)), iters) for p in prompts]
    for row, voice in WORLD_SANITY.items():
        clips[row] = [world_channel(profile)(synthesize(voice, p.text)) for p in prompts]
    results = {}
    for name, classifier in classifiers.items():
        results[name] = {s: round(float(classifier.is_real(c).mean()), 4) for s, c in clips.items()}
        results[name.replace("labelled_allison", "classifier_train_clips")] = classifier.train_clips
    return results


def speaker_only(args: argparse.Namespace, out: Path) -> dict:
    """Only the speaker judges, merged into an existing speech.json (the other measures kept as they were)."""
    handle = genlab.load(args.run)
    iters = handle.recipe.eval.griffin_lim_iters
    prompts = load_prompts("test")[: args.prompts or None]
    profile = handle.vocoder.profile
    classifiers = speaker_classifiers(load_prompts("train"), args.classifier_prompts, iters, profile)
    clips_by_prompt = {p.name: renderings(handle, p, iters) for p in prompts}
    path = out / "speech.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    labels = speaker_labels(classifiers, clips_by_prompt, prompts, iters, profile)
    return {**previous, **labels, "speaker_held_out_sentences": len(prompts)}


def real_time_factor(handle, repeats: int = 3) -> dict[str, float]:
    """`generate(text=RTF_TEXT)` wall seconds / audio seconds (median of repeats), on this process's threads."""
    handle.generate(text=RTF_TEXT)  # warm-up
    times, seconds = [], 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        clip = handle.generate(text=RTF_TEXT)
        times.append(time.perf_counter() - start)
        seconds = clip.seconds()
    wall = statistics.median(times)
    return {"audio_seconds": round(seconds, 2), "wall_seconds": round(wall, 3), "rtf": round(wall / seconds, 4)}


def figure(clips: dict[str, np.ndarray], title: str, path: Path) -> None:
    """Log-mel spectrograms of one sentence, one row per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ("real", "real-world", "real-gl", "tts", "tts-gl", "tts-diff", "vc-flite", "vc-flite-gl", "vc-flite-diff")
    names += ("espeak-ng", "espeak-gl", "flite")
    fig, axes = plt.subplots(len(names), 1, figsize=(9, 1.6 * len(names)), sharex=False)
    for ax, name in zip(axes, names):
        frames = log_mel(clips[name]).T
        ax.imshow(frames, origin="lower", aspect="auto", cmap="magma", vmin=-9.2, vmax=frames.max())
        ax.set_ylabel(name, rotation=0, ha="right", va="center")
        ax.set_xticks([])
        ax.set_yticks([])
    short = textwrap.shorten(title, 70, placeholder=" …")
    axes[0].set_title(f"“{short}” (held out) — 64 mel bands, 0–4 kHz, 10 ms frames", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    from PIL import Image

    Image.open(path).convert("RGB").quantize(64).save(path, optimize=True)  # 64 colours: a third of the bytes


def judge(args: argparse.Namespace) -> dict:
    # long: one pass over the held-out sentences gathers every measure, so each sentence is rendered once
    handle = genlab.load(args.run)
    iters = handle.recipe.eval.griffin_lim_iters
    prompts, train = load_prompts("test")[: args.prompts or None], load_prompts("train")
    judge_ = SentenceJudge([p.text for p in load_prompts()])
    profile = handle.vocoder.profile
    classifiers = speaker_classifiers(train, args.classifier_prompts, iters, profile)
    hits = {s: [] for s in SYSTEMS}
    mcd = {s: [] for s in SYSTEMS if s != "real"}
    heard = {s: [] for s in WER_SYSTEMS}
    clips_by_prompt = {}
    for i, prompt in enumerate(prompts):
        clips = renderings(handle, prompt, iters)
        clips_by_prompt[prompt.name] = clips
        real_frames = log_mel(clips["real"])
        for system, wave in clips.items():
            if judge_.knows(prompt.text):
                hits[system].append(judge_.identify(wave) == spoken_words(prompt.text))
            if system != "real":
                mcd[system].append(mel_cepstral_distortion(log_mel(wave), real_frames))
            if i < args.wer_prompts and system in heard:
                heard[system].append(judge_.transcribe(wave))
        print(f"{i + 1}/{len(prompts)} {prompt.name}", flush=True)
    references = [p.text for p in prompts[: args.wer_prompts]]
    results = {
        "run": str(args.run),
        "held_out_sentences": len(prompts),
        "grammar_sentences": len(judge_.sentences),
        "judged_sentences": len(hits["real"]),
        "identification": {s: round(float(np.mean(h)), 4) for s, h in hits.items()},
        "wer_sentences": len(references),
        "wer": {s: round(word_error_rate(references, h), 4) for s, h in heard.items()},
        "mcd_db": {s: round(float(np.mean(v)), 3) for s, v in mcd.items()},
        **speaker_labels(classifiers, clips_by_prompt, prompts, iters, profile),
        "vocoder": handle.recipe.eval.vocoder,
        "rtf_one_thread": real_time_factor(handle),
        "threads": int(os.environ.get("GENLAB_THREADS", "0") or 0),
        "load_average": os.getloadavg(),
    }
    if args.figure:
        shown = next((p for p in prompts if p.name == args.show), prompts[0])
        figure(clips_by_prompt[shown.name], shown.text, Path(args.figure))
    if args.wavs:
        save_examples(handle, clips_by_prompt.get(args.show, clips_by_prompt[prompts[0].name]), Path(args.wavs))
    return results


def save_examples(handle, clips: dict[str, np.ndarray], folder: Path) -> None:
    """Small WAVs to listen to: one held-out sentence by several systems, and the sample sentence."""
    folder.mkdir(parents=True, exist_ok=True)
    names = ("real", "real-world", "tts", "tts-gl", "tts-diff", "vc-flite", "vc-flite-gl", "vc-flite-diff")
    for name in (*names, "espeak-ng", "espeak-gl"):
        write_wav(folder / f"heldout-{name}.wav", resample(clips[name], RATE, 16_000))
    handle.generate(text="Your call is important to us.").save(folder / "your-call-is-important.wav")


def table(results: dict) -> str:
    rows = [
        "| system | sentence identified | WER | MCD (dB) | labelled Allison: plain judge | Griffin-Lim-robust | "
        "WORLD-robust |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    robust = results.get("labelled_allison_channel_robust", {})
    world = results.get("labelled_allison_world_robust", {})
    for s in (*SYSTEMS, *SPEAKER_SANITY, *WORLD_SANITY):
        ident, mcd, wer = results["identification"].get(s), results["mcd_db"].get(s), results["wer"].get(s)
        plain, rob, wrob = results["labelled_allison"].get(s), robust.get(s), world.get(s)
        cells = [s] + [
            "–" if v is None else (f"{v:.2f}" if unit == "dB" else f"{100 * v:.1f} %")
            for v, unit in ((ident, "%"), (wer, "%"), (mcd, "dB"), (plain, "%"), (rob, "%"), (wrob, "%"))
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--out", default="benchmarks/results/speech")
    parser.add_argument("--prompts", type=int, default=0, help="held-out sentences judged (0: all)")
    parser.add_argument("--wer-prompts", type=int, default=20)
    parser.add_argument("--classifier-prompts", type=int, default=120)
    parser.add_argument("--figure", default=None)
    parser.add_argument("--wavs", default=None)
    parser.add_argument("--show", default="vm-nobodyavail", help="the held-out prompt drawn and saved as WAVs")
    parser.add_argument("--rtf-only", action="store_true", help="only the real-time factor (run it alone)")
    parser.add_argument("--speaker-only", action="store_true", help="only the speaker judges, into speech.json")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.rtf_only:  # alone on the machine (`heavy -2`): wall time is then the one core's
        timing = {**real_time_factor(genlab.load(args.run)), "load_average_before": os.getloadavg()}
        atomic_write_text(out / "rtf.json", json.dumps(timing, indent=2) + "\n")
        print(json.dumps(timing))
        return
    started = time.process_time()
    results = speaker_only(args, out) if args.speaker_only else judge(args)
    results["speaker_cpu_seconds" if args.speaker_only else "cpu_seconds"] = round(time.process_time() - started, 1)
    atomic_write_text(out / "speech.json", json.dumps(results, indent=2) + "\n")
    atomic_write_text(out / "speech.md", table(results))
    print(table(results))
    print(json.dumps({k: results[k] for k in ("rtf_one_thread", "cpu_seconds")}))


if __name__ == "__main__":
    main()
