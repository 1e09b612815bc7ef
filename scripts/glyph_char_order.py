"""Write genlab/data/glyph_chars.txt: the GB2312 level-1 characters (3,755) in a frequency order.

The order: characters by how often they occur in a Chinese text given on the command line (most frequent
first, ties in GB2312 order), then the characters the text never uses, in GB2312 order (level 1 is
ordered by pinyin, not by frequency). genlab's file was made from the Chinese essay genlab is built from
(seed/generative-ai-essay.zh.md: 5,207 Han characters, 584 distinct):

    python scripts/glyph_char_order.py seed/generative-ai-essay.zh.md
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "genlab" / "data" / "glyph_chars.txt"


def gb2312_level1() -> list[str]:
    """Rows 16-55 of GB2312 (bytes 0xB0-0xD7, 0xA1-0xFE): the 3,755 level-1 hanzi, in GB2312 order."""
    chars = []
    for hi in range(0xB0, 0xD8):
        for lo in range(0xA1, 0xFF):
            try:
                chars.append(bytes([hi, lo]).decode("gb2312"))
            except UnicodeDecodeError:  # row 55 ends at 0xF9
                pass
    return chars


def main(text_path: str) -> None:
    level1 = gb2312_level1()
    rank = {c: i for i, c in enumerate(level1)}
    counts = Counter(c for c in Path(text_path).read_text(encoding="utf-8") if c in rank)
    order = sorted(level1, key=lambda c: (-counts[c], rank[c]))
    header = (
        f"# GB2312 level 1 ({len(order)} characters), most frequent first: {len(counts)} by their count in "
        f"{Path(text_path).name}, then the rest in GB2312 order. Made by scripts/glyph_char_order.py.\n"
    )
    OUT.write_text(header + "".join(order) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: {len(order)} characters, {len(counts)} ordered by frequency")


if __name__ == "__main__":
    main(sys.argv[1])
