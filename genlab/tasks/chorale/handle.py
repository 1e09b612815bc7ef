"""A chorale run opened for use: four-voice chorales in a mode and key, or the harmonisation of a soprano melody
(MusicXML); evaluation against Bach's held-out chorales and a Kneser-Ney n-gram."""

from __future__ import annotations

from typing import Any

from genlab.core.checkpoint import load_network
from genlab.core.run import CostMeter, RunDir
from genlab.data.chorale_tokens import MODE_TOKENS, MODES, PAD, STEPS_PER_BAR, ChoraleTokenizer, transposition
from genlab.data.chorales import read_melody
from genlab.data.folk_tokens import tonic_name
from genlab.errors import GenlabError
from genlab.interop.onnx import ExportGraph, token_logits_graph
from genlab.io.validate import check_int, check_seed
from genlab.models.transformer import Transformer, TransformerConfig
from genlab.tasks.chorale.evaluate import evaluate_run
from genlab.tasks.chorale.output import SUFFIXES, GeneratedChorales
from genlab.tasks.chorale.recipe import ChoraleRecipe
from genlab.tasks.chorale.rules import SAMPLINGS
from genlab.tasks.chorale.sampling import sample_grids, soprano_given
from genlab.tasks.contract import RunHandle, TextDecoding
from genlab.tasks.folk.handle import lstm_budget

MAX_CHORALES = 32  # chorales in one generate call
MAX_BARS = 128


def pitch_class(tonic: str) -> int:
    """'G', 'F#', 'Bb' -> its pitch class (an unknown name is one line)."""
    from music21 import pitch

    return pitch.Pitch(tonic_name(tonic)).pitchClass


def prompt_tokens(tokenizer: ChoraleTokenizer, prompt: str, steps: int) -> tuple[str, list[str]]:
    """A prompt of grid tokens -> its mode and the tokens after it (the opening to keep)."""
    tokens = tokenizer.decode(tokenizer.encode(prompt)).split()
    if not tokens or tokens[0] not in MODE_TOKENS or any(t in MODE_TOKENS + (PAD,) for t in tokens[1:]):
        raise GenlabError(
            "a chorale prompt is grid tokens after one mode token: <major> or <minor>, then p60, _, r ..."
        )
    if len(tokens) - 1 > 4 * steps:
        raise GenlabError(f"the prompt holds {(len(tokens) - 1) // 4} steps, more than --bars asks for ({steps})")
    return tokens[0][1:-1], tokens[1:]


class ChoraleRun(RunHandle):
    eval_section = "test"
    output_suffixes = SUFFIXES
    endpoint = "completions"  # the server continues grid tokens ("<major> p72 p67 p64 p48 _ _ _ _ ...")

    def __init__(self, run: RunDir, recipe: ChoraleRecipe, checkpoint: str = "last"):
        super().__init__(run, recipe, checkpoint)
        self.config, self.model, _, _ = load_network(
            run, checkpoint, "chorale", TransformerConfig, Transformer, "model"
        )
        self.model.eval()
        self.tokenizer = ChoraleTokenizer()
        if self.config.vocab_size != self.tokenizer.vocab_size:
            raise GenlabError(f"{run.path}: the model reads {self.config.vocab_size} tokens, not the chorale grid's")

    def generate(
        self,
        mode: str = "major",
        tonic: str = "C",
        bars: int = 16,
        n: int = 1,
        seed: int = 0,
        temperature: float = 1.0,
        top_k: int = 0,
        melody: str | None = None,
        prompt: str | None = None,
        sampling: str = "rules",
    ) -> GeneratedChorales:
        """n four-voice chorales of `bars` bars in `tonic` `mode`, or, with a melody file, n harmonisations of
        it (alto, tenor and bass under the melody as given, in its own key and length), or, with a prompt of
        grid tokens, n continuations of its opening (in its mode).

        Args:
            mode: major or minor
            tonic: the key's tonic, a note name such as G, F# or Bb
            bars: the length of each chorale, in 4/4 bars
            top_k: 0 = every token may be drawn
            melody: a MusicXML file of one part in 4/4 (the soprano) to harmonise
            prompt: grid tokens to continue, the mode first ("<major> p72 p67 p64 p48 _ _ _ _")
            sampling: rules (no parallel fifths or octaves, no note out of range, no crossing) or free
        """
        check_int("--n", n, 1, MAX_CHORALES)
        check_int("--bars", bars, 1, MAX_BARS)
        check_seed("--seed", seed)
        check_int("--top-k", top_k, 0, self.config.vocab_size)
        if temperature < 0:
            raise GenlabError(f"--temperature must be >= 0, got {temperature}")
        if mode not in MODES:
            raise GenlabError(f"unknown mode '{mode}' (choose {' or '.join(MODES)})")
        if sampling not in SAMPLINGS:
            raise GenlabError(f"unknown sampling '{sampling}' (choose {' or '.join(SAMPLINGS)})")
        if melody is not None and prompt is not None:
            raise GenlabError("pass --melody or --prompt, not both")
        steps, shift, given = bars * STEPS_PER_BAR, -transposition(pitch_class(tonic), mode), None
        if melody is not None:
            mode, soprano, shift = read_melody(melody)
            steps, given = len(soprano), soprano_given([soprano] * n)
        elif prompt is not None:
            mode, opening = prompt_tokens(self.tokenizer, prompt, steps)
            given = [opening] * n
        grids = sample_grids(self.model, mode, steps, n, seed, temperature, top_k or None, given, sampling)
        return GeneratedChorales(grids, mode, shift)

    def text_decoding(self) -> TextDecoding:
        return TextDecoding(self.model, self.tokenizer, self.tokenizer.encode, frozenset())

    def export_graph(self) -> ExportGraph:
        """The transformer without a cache: grid-token ids -> logits at every position."""
        return token_logits_graph(self.model, "chorale grid tokens (genlab.data.chorale_tokens.VOCAB)")

    def evaluate(self, n: int | None = None, seed: int = 0, lstm: str = "off") -> dict[str, Any]:
        """Held-out NLL per token beside a Kneser-Ney n-gram's (and an LSTM's trained for `lstm` CPU seconds:
        "same" = the run's own training CPU time, "off" = none); the parallel fifths and octaves, range violations
        and voice crossings per 100 beats of n generated chorales and of the harmonised test sopranos, against
        Bach's own test chorales; report.json `test`."""
        n = self.recipe.eval.num_samples if n is None else n
        check_int("--n", n, 1, 1_000)
        check_seed("--seed", seed)
        lstm_seconds = lstm_budget(lstm, self.report)
        meter = CostMeter()
        metrics = evaluate_run(self, n, seed, lstm_seconds)
        metrics["checkpoint"] = self.checkpoint
        metrics["eval_seconds"] = meter.snapshot()["wall_seconds"]
        self.run.update_report(self.eval_section, metrics)
        return metrics
