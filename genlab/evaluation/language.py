"""Which language a short answer is in, English or Spanish: by counting each language's commonest words
and Spanish's accented letters. Good enough to say whether a chat model answered in the language asked
for; not a general language identifier."""

from __future__ import annotations

import re

SPANISH = set(
    "el la de que y en los se del las un por con una su para es al lo como más pero sus le ya fue este ha sí "
    "porque esta son entre cuando muy sin sobre ser también me hasta hay donde quien desde todo nos todos les ni "
    "ese eso ellos esto mí qué yo otro él esa estos ella mi mis tú te tu ti os vosotros soy eres estoy bien hola "
    "gracias dijo pues señor dios tierra sobre hijos".split()
)
ENGLISH = set(
    "the and of to a in is it you that he was for on are with as i his they be at one have this from or had by "
    "not but what all were we when your can said there an which she do how their if will up my me him them so "
    "yes am hello thanks who shall unto thee thou god lord land sons".split()
)
ACCENTED = re.compile(r"[áéíóúñ¿¡]")


def language(text: str) -> str:
    """ "spanish", "english" or "unknown" (no telling word)."""
    words = re.findall(r"[^\W\d_]+", text.lower())
    es = sum(w in SPANISH for w in words) + len(ACCENTED.findall(text.lower()))
    en = sum(w in ENGLISH for w in words)
    if es == en:
        return "unknown"
    return "spanish" if es > en else "english"
