"""tests/text/corpus.py — the tokenizer test corpus: >= 400 strings (as bytes) covering
English, code, LaTeX, numbers, CJK, Arabic, Hebrew, Devanagari, emoji sequences,
combining marks that NFC composes, whitespace runs, CR LF, special tokens inline and
partial, control characters and invalid UTF-8. All text here was written for this test."""

import itertools


def english():
    s = [
        "Hello world", "hello world", "HELLO WORLD", "The quick brown fox jumps over the lazy dog.",
        "I'm sure it's fine, isn't it?", "I'M SURE IT'S FINE", "WE'LL SEE, THEY'VE GONE, YOU'RE RIGHT, I'D SAY",
        "She said: \"don't touch that!\"", "It's 5 o'clock somewhere.", "O'Brien's dog's bowl",
        "rock'n'roll", "'s 't 're 've 'm 'll 'd", "'S 'T 'RE 'VE 'M 'LL 'D", "y'all'd've",
        "Reinforcement learning from verifiable rewards trains a policy on checked answers.",
        "A policy gradient step: sample, score, normalise the advantages, update.",
        "Wait... what?!", "Yes -- no -- maybe.", "e.g. i.e. etc. vs. Dr. Mr. Mrs.", "U.S.A. and U.K.",
        "camelCaseIdentifier and snake_case_identifier and SCREAMING_CASE", "email: someone@example.com",
        "https://example.com/path?query=1&other=two#frag", "path/to/some/file.txt",
        "What's the answer? The answer is 42.", "  indented sentence with two spaces",
        "Trailing spaces   ", "Mixed CASE Words In A Title", "a", "I", "", " ", "ab cd ef gh",
        "supercalifragilisticexpialidocious", "antidisestablishmentarianism",
        "Once upon a time, there was a tokenizer that had to be exact to the id.",
        "Please reason step by step, and put your final answer within \\boxed{}.",
    ]
    return s


def code():
    return [
        "def f(x):\n    return x * 2\n",
        "def g(a, b):\n\tif a > b:\n\t\treturn a\n\treturn b\n",
        "for (int i = 0; i < n; i++) {\n    sum += a[i];\n}\n",
        "#include <stdio.h>\nint main(void) {\n\tprintf(\"hi\\n\");\n\treturn 0;\n}\n",
        "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}",
        "    \n    \n        x = 1\n",
        "if x:\r\n    y = 2\r\nelse:\r\n    y = 3\r\n",
        "SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name;",
        "const add = (a, b) => a + b; // arrow",
        "$ ls -la | grep '\\.py$' && echo done",
        "x+=1;y-=2;z*=3;w/=4;", "a==b!=c<=d>=e", "foo->bar::baz", "arr[i][j]",
        "lambda x: x**2 + 3*x - 1", "    # comment with trailing spaces    ",
        "\t\t\tdeep tabs", "class Foo(Bar):\n    \"\"\"Docstring.\"\"\"\n    pass",
        "<div class=\"a\">text</div>", "<|not_a_token|> <tag attr='1'/>",
        "fn main() { println!(\"{}\", 1 + 1); }", "x = [i for i in range(10) if i % 2 == 0]",
        "import numpy as np\nnp.zeros((3, 4), dtype=np.float32)",
        "    return {k: v for k, v in d.items()}\n\n\n", "\n\n\ndef h():\n  pass",
        "  \t  mixed\t indentation \t", "0x7fffffff & ~mask | (1 << 31)", "std::vector<int> v{1,2,3};",
        "#!/usr/bin/env bash\nset -euo pipefail\n", "````python\nprint('x')\n````",
    ]


def latex():
    return [
        "$x^2 + y^2 = z^2$", "\\frac{a}{b} + \\sqrt{2}", "$$\\int_0^1 f(x)\\,dx = F(1) - F(0)$$",
        "\\sum_{i=1}^{n} i = \\frac{n(n+1)}{2}", "\\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}",
        "\\alpha\\beta\\gamma\\delta", "\\mathbb{R}^n \\to \\mathbb{R}", "\\boxed{42}",
        "e^{i\\pi} + 1 = 0", "\\lim_{x \\to 0} \\frac{\\sin x}{x} = 1", "\\left( \\frac{1}{2} \\right)^{10}",
        "a_{ij} = b_{ji}", "\\nabla \\cdot \\mathbf{E} = \\frac{\\rho}{\\varepsilon_0}",
        "\\text{if } x > 0", "\\{1, 2, 3\\} \\cup \\{4\\}", "\\binom{n}{k} = \\frac{n!}{k!(n-k)!}",
        "f'(x) = \\lim_{h\\to0}\\frac{f(x+h)-f(x)}{h}", "\\(x\\) and \\[y\\]", "∀x ∈ ℝ, x² ≥ 0",
        "∑ ∫ ∂ ∞ ≈ ≠ ≤ ≥ √ π", "The answer is $\\boxed{\\frac{3}{4}}$.", "\\overline{AB} \\perp \\overline{CD}",
        "\\log_2 1024 = 10", "x \\equiv 3 \\pmod{7}", "\\lfloor x \\rfloor + \\lceil y \\rceil",
    ]


def numbers():
    s = ["0", "7", "42", "123", "1234", "12345", "123456", "1234567", "12345678901234567890",
         "3.14159", "-42", "+7", "1,000,000", "1.000.000,50", "1e-9", "6.022e23", "0x1F", "0b1011",
         "12:30:45", "2024-01-05", "05/01/2024", "+1 (555) 123-4567", "$1,234.56", "€99,99", "50%",
         "v1.2.3", "192.168.0.1", "٠١٢٣٤٥٦٧٨٩", "١٢٣ + ٤٥٦", "०१२३४५६७८९", "१२३४", "１２３４５",
         "Ⅻ Ⅷ ⅷ", "x² + y³", "½ ¼ ¾", "①②③", "the 1st, 2nd, 3rd and 4th", "1000000000000",
         "0.1 + 0.2 = 0.30000000000000004", "99 bottles", "a1b2c3d4", "3,14", "10^9+7", "-0.0", "1/3",
         "   42   ", "42\n43\n44", "𝟏𝟐𝟑", "九十九", "٣٫١٤"]
    return s


def cjk():
    return [
        "你好，世界！", "我爱自然语言处理。", "强化学习需要可验证的奖励。", "这是一个测试句子，包含标点符号：逗号、句号。",
        "中文English混合text", "北京是中国的首都", "今天天气很好，我们去公园吧。", "一二三四五六七八九十",
        "こんにちは世界", "日本語のテキストです。", "カタカナとひらがなと漢字", "東京タワーは赤い。", "ｶﾀｶﾅ半角",
        "안녕하세요 세계", "한국어 문장입니다.", "강화 학습", "한글과 English", "㈜ ㎏ ㎡",
        "「引用」と『二重引用』", "【重要】お知らせ", "中文　全角空格", "繁體中文測試", "汉字漢字",
        "数学：１＋１＝２", "Ｆｕｌｌｗｉｄｔｈ　ＡＳＣＩＩ", "𠀀𠀁𠀂", "〇〡〢〣", "龍が如く", "あ", "漢",
    ]


def rtl_indic():
    return [
        "مرحبا بالعالم", "اللغة العربية جميلة.", "هذا نص عربي مع أرقام 123", "السَّلَامُ عَلَيْكُمْ", "ﻻ ﻷ",
        "العربية و English معاً", "كتب الطالب الدرس", "في عام ٢٠٢٤", "؟ ، ؛", "مُحَمَّد", "القرآن",
        "שלום עולם", "עברית היא שפה", "בְּרֵאשִׁית בָּרָא", "טקסט עם מספרים 42", "ירושלים", "שָׁלוֹם",
        "עברית and English", "״מירכאות״", "אבגדהוזחטיכלמנסעפצקרשת", "ךםןףץ",
        "नमस्ते दुनिया", "हिन्दी भाषा", "यह एक परीक्षण वाक्य है।", "क्षत्रिय", "संस्कृतम्", "ज़िंदगी",
        "देवनागरी लिपि में ० से ९", "मैं घर जा रहा हूँ", "श्री", "ॐ", "த‌மிழ்", "ಕನ್ನಡ", "ไทย ภาษา", "Ελληνικά",
        "Русский язык", "Українська", "ქართული",
    ]


def emoji():
    return [
        "😀", "👍", "👍🏻", "👍🏽", "👍🏿", "👨‍👩‍👧‍👦", "👩‍💻", "🧑🏽‍🚀", "🏳️‍🌈", "🏴‍☠️", "❤️", "❤",
        "🇯🇵🇺🇸🇫🇷", "1️⃣2️⃣#️⃣", "👨🏻‍🤝‍👨🏿", "🤷‍♀️", "🙇🏾‍♂️", "🫠🫡", "Great job! 🎉🎉🎉", "🔥🔥",
        "emoji😀inline", "😀 😁 😂 🤣", "🐍 python", "☺️☺", "✔️ done", "💯%", "👁️‍🗨️", "🧔‍♀️",
    ]


def nfc():
    return [
        "e\u0301", "cafe\u0301", "caf\u00e9", "A\u030a", "\u212b", "\u2126", "n\u0303",
        "a\u0323\u0302", "a\u0302\u0323", "o\u0308\u0304", "\u1100\u1161\u11a8", "\u1112\u1161\u11ab\u1100\u1173\u11af",
        "Zo\u0308e", "u\u0308ber", "U\u0308BER", "re\u0301sume\u0301", "Prince\u0301", "e\u0301e\u0301e\u0301",
        "\u0041\u0301\u0042\u0301", "\u00c5ngstr\u00f6m vs A\u030angstro\u0308m", "s\u0323\u0307", "\u1e9b\u0323",
        "\u0915\u093c", "\u05d1\u05bc", "\u0627\u0653", "\u30ab\u3099", "\u304b\u3099", "\u0301 leading mark",
        "x\u0301\u0301\u0301", "\u00e9\u0301", "\u212b\u212b", "Ǆ ǅ ǆ", "ﬁ ﬂ", "ℌ ℍ",
    ]


def whitespace():
    ws = [" ", "  ", "   ", "    ", "\t", "\t\t", "\n", "\n\n", "\n\n\n", "\r\n", "\r\n\r\n", "\r", " \n ",
          "\n ", " \n", "\t\n", "\u00a0", "\u200b", "\u3000", "\u2009", "\ufeff", "\u2028", "\u0085"]
    s = []
    for w in ws:
        s.append("a" + w + "b")
    s += ["", " ", "          ", "\n\n\n\n\n\n", "\t \t \t", "line1\r\nline2\r\n", "end with CRLF\r\n",
          "  leading", "trailing  ", "a \u00a0 b", "zero\u200bwidth\u200bspace", "nb\u00a0sp\u00a0inside",
          " \u00a0\u00a0 ", "word   \n   word", "x\n\n  \n\t\ty", "\n\n\ttab after blank lines",
          "a  b   c    d     e", "trailing newline\n", "  \n  \n  ", "\r\n\r\n\r\nend", "   \t"]
    return s


def specials():
    return [
        "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|>system\nYou are helpful.<|im_end|>", "<|endoftext|>", "<|endoftext|><|endoftext|>",
        "text<|endoftext|>more text", " <|im_end|> ", "<|im_start", "<|im_end|", "im_start|>", "<|im_", "<|",
        "<|im_start|><|im_end|>", "<<|im_start|>>", "<think>\nLet me think.\n</think>\n\nThe answer is 4.",
        "<think></think>", "<think>", "</think>", "<thinking>", "</think>\n\n", "<tool_call>\n{}\n</tool_call>",
        "<|begin_of_text|>hello", "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", "<|eot_id|>",
        "<|begin_of_text", "<|reserved_special_token_3|>", "<mask>", " <mask> ", "x  <mask>  y", "[SEP]  next",
        "a[SEP] b", "custom_word and  custom_word", "café au lait", "cafe\u0301 au lait", "Straße", "STRASSE Straße",
        "<|endoftext|>\n<|endoftext|>\n", "<|im_start|>assistant<|im_end|><|endoftext|>", "<|fim_prefix|>x<|fim_suffix|>",
        "<|vision_start|><|image_pad|><|vision_end|>", "a<|im_end|>b<|im_start|>c", "<|IM_START|>",
    ]


def misc():
    return [
        "\x00", "a\x00b", "\x7f", "\x1b[31mred\x1b[0m", "\x01\x02\x03", "\x0b\x0c", "aaaaaaaaaaaaaaaaaaaaaaaa",
        "!!!!!!!!!!!!", "??!!..,,", "...", "—–-", "“smart quotes” and ‘single’", "« guillemets »", "©®™",
        "§¶†‡", "•·…", "ǅungla", "İstanbul ı", "ß ẞ", "Ａ", "ÀÉÎÕÜ àéîõü", "Ωmega ωmega", "ℕ ℤ ℚ",
        "naïve coöperate", "Øresund Æsir", "Łódź", "Việt Nam", "Çà et là", "ñandú", "Žluťoučký kůň",
        "**bold** _italic_ `code`", "# Heading\n\n- item 1\n- item 2\n", "| a | b |\n|---|---|\n| 1 | 2 |",
        "> quote\n>> nested", "~~strike~~", "[link](http://x.y)", "<br/>", "&amp; &lt; &gt;", "\\n \\t \\\\",
        "\"\"\"", "''", "'''", "'", "'s", "'S", "x's", "'hello'", "''s", "can't won't shan't",
    ]


def invalid_utf8():
    return [b"\xff", b"abc\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\xf0\x9f\x98",
            b"ok\x80ok", b"\xe2\x28\xa1", b"\xf0\x28\x8c\xbc", b"\xfe\xfe\xff\xff", b"caf\xe9", b"\xc3\x28",
            b"a\xf0\x9f\x98\x80b\xf0\x9f", b"\xe0\x80\x80", b"\xf8\x88\x80\x80\x80"]


def long_strings():
    para = ("Reinforcement learning with verifiable rewards samples several answers per prompt, "
            "checks each one, and moves the policy toward the better ones. ")
    return [para * 8, "abc" * 300, "日本語" * 200, "    " * 100 + "x", "1234567890" * 50, "😀" * 100,
            "\n".join("line %d\twith tab" % i for i in range(60))]


def corpus(extra=()):
    groups = [english(), code(), latex(), numbers(), cjk(), rtl_indic(), emoji(), nfc(), whitespace(),
              specials(), misc(), long_strings(), list(extra)]
    out, seen = [], set()
    for g in groups:
        for s in g:
            b = s if isinstance(s, bytes) else s.encode("utf-8")
            if b not in seen:
                seen.add(b)
                out.append(b)
    for b in invalid_utf8():
        if b not in seen:
            seen.add(b)
            out.append(b)
    # Pairwise joins of a few categories make more boundary cases (script changes, digits
    # next to letters, special tokens next to whitespace).
    picks = [english()[:8], numbers()[:10], cjk()[:6], whitespace()[:10], specials()[:10], emoji()[:6]]
    for a, b in itertools.islice(itertools.product(*picks[:2]), 30):
        out.append((a + b).encode())
    for a, b in itertools.islice(itertools.product(picks[2], picks[3]), 30):
        out.append((a + b).encode())
    for a, b in itertools.islice(itertools.product(picks[4], picks[5]), 30):
        out.append((a + " " + b).encode())
    return out


def training_text():
    """Text the small GPT-2-style and Llama-3-style tokenizers are trained on."""
    base = [s for s in corpus() if b"\xff" not in s]
    words = ("the of and to in is that it for on with as was at by be this are from or have an they which "
             "one you were her all she there would their we him been has when who will more no if out so said "
             "what up its about into than them can only other new some could time these two may then do first "
             "any my now such like our over man me even most made after also did many before must through back "
             "years where much your way well down should because each just those people how too little state good "
             "very make world still own see men work long get here between both life being under never day same "
             "another know while last might us great old year off come since against go came right used take three "
             "reward policy gradient token model train sample answer prompt value advantage loss").split()
    lines = []
    for i in range(3000):
        w = [words[(i * 7 + k * 13) % len(words)] for k in range(12)]
        lines.append(" ".join(w) + ". " + str(i * 37 % 1000))
    return [b.decode("utf-8", "replace") for b in base] + lines
