"""Chorales: the voice leading of generated chorales and harmonised test sopranos drawn by the model alone
(`sampling="free"`: the rules sampler breaks no rule by construction) at temperatures 0.5 and 0.7 (the recipe
evaluates at 1.0), from a trained run; -> benchmarks/results/chorale/temperature.json.

    python benchmarks/chorale_temperature.py [runs/chorale]
"""

import json
import sys

import genlab
from genlab.data.chorale_tokens import tokens_grid
from genlab.data.chorales import load_chorales, split_sequences
from genlab.evaluation.voice_leading import voice_leading
from genlab.tasks.chorale.evaluate import generated_section, harmonised_section

h = genlab.load(sys.argv[1] if len(sys.argv) > 1 else "runs/chorale")
test = split_sequences(load_chorales(None), "test")
bach = voice_leading([tokens_grid(t)[1] for t in test])
out = {}
for t in (0.5, 0.7):
    h.recipe.eval.temperature = t
    g = generated_section(h, 16, 0, bach, "free")
    hm = harmonised_section(h, test, 0, "free")
    parts = (("generated", g), ("harmonised", hm))
    rates = {name: {k: v for k, v in part.items() if k.endswith("100_beats")} for name, part in parts}
    out[t] = {**rates, "as_bach": hm["lower_voice_tokens_as_bach"]}
print(json.dumps(out, indent=1))
json.dump(out, open("benchmarks/results/chorale/temperature.json", "w"), indent=1)
