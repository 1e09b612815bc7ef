#!/usr/bin/env bash
# Install the Debian packages that carry genlab's offline data sets (DESIGN.md §3) and WordNet (the synonyms of
# the text-robustness noise, genlab/io/wordnet.py); the speech synthesizers
# the spoken-digits corpus is made with (espeak-ng, flite) and its human check set (asterisk's digits);
# Chromium, the real browser the playground test (tests/test_playground.py) drives; and PostgreSQL, the
# server the multi-machine sweep test (tests/test_sweep_postgres.py) starts; and the CJK fonts the glyph
# style-transfer data set renders (genlab/data/glyphs.py); the colour emoji font of the emoji image set
# (genlab/data/emoji.py).
# Needs root and apt; otherwise prints the command to run and carries on (mnist still works from the
# bundled subset; the data sets that need these packages say so when asked for).
set -u
packages=(
  dataset-fashion-mnist sword-text-kjv sword-text-web sword-text-sparv fortunes wordnet-base chromium espeak-ng flite
  asterisk-core-sounds-en-wav postgresql
  fluidsynth fluid-soundfont-gm
  fonts-wqy-microhei fonts-wqy-zenhei fonts-arphic-ukai fonts-arphic-uming fonts-cwtex-kai fonts-cwtex-ming fonts-cwtex-fs
  fonts-cwtex-heib fonts-cwtex-yen fonts-lxgw-wenkai
  fonts-noto-color-emoji
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian data packages: ${missing[*]}"
  if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; then
    exit 0
  fi
  echo "warning: apt-get could not install ${missing[*]}" >&2
else
  echo "note: genlab's data sets ${missing[*]} come from Debian packages; install them with:" >&2
fi
echo "    sudo apt-get update && sudo apt-get install ${missing[*]}" >&2
exit 0
