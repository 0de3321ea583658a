"""Regenerates python_unicode_case.tsv: CPython's own Unicode case data, used by PythonTextTests.

Run with the CPython whose str.lower() should be matched (the committed file was made with 3.11.7, Unicode 14.0.0):
    python3 gen_python_unicode_case.py > python_unicode_case.tsv
Records (tab separated, hex code points):
    V  <python version>  <unidata version>
    L  <cp>  <cp cp ...>      str.lower() of the single character, only where it differs from the character
    A/C/I/W  <first>  <last>  ranges: assigned (category != Cn), Cased, Case_Ignorable, str.isspace()
    S  <json input>  <json output>   whole-string str.lower() vectors (Final_Sigma context)
Cased and Case_Ignorable are not exposed by CPython, so they are probed through str.lower()'s Final_Sigma rule.
"""
import json
import sys
import unicodedata

SIGMA = "\u03a3"


def ranges(pred):
    out, start = [], None
    for cp in range(0x110000 + 1):
        ok = cp < 0x110000 and pred(cp)
        if ok and start is None:
            start = cp
        elif not ok and start is not None:
            out.append((start, cp - 1))
            start = None
    return out


def is_cased(c):
    return c.islower() or c.isupper() or c.istitle()


def is_case_ignorable(c):
    if is_cased(c):
        # "A" Σ c: the sigma is final exactly when c can be skipped.
        return ("A" + SIGMA + c).lower()[1] == "\u03c2"
    # Not cased: "A" Σ c "A" keeps a medial sigma exactly when c can be skipped.
    return ("A" + SIGMA + c + "A").lower()[1] == "\u03c3"


def chars(pred):
    return lambda cp: not (0xD800 <= cp <= 0xDFFF) and pred(chr(cp))


print("V\t%s\t%s" % (sys.version.split()[0], unicodedata.unidata_version))
for cp in range(0x110000):
    if 0xD800 <= cp <= 0xDFFF:
        continue
    low = chr(cp).lower()
    if low != chr(cp):
        print("L\t%X\t%s" % (cp, " ".join("%X" % ord(x) for x in low)))
for tag, pred in (("A", lambda c: unicodedata.category(c) != "Cn"), ("C", is_cased),
                  ("I", is_case_ignorable), ("W", str.isspace)):
    for a, b in ranges(chars(pred)):
        print("%s\t%X\t%X" % (tag, a, b))
samples = [
    "ΟΔΥΣΣΕΥΣ", "ΣΑΣ", "Σ", "AΣ", "ΣA", "A Σ", "AΣ B", "AΣ'", "AΣ'B", "A'Σ", "AΣ.", "ΑΣ\u0301", "ΑΣ\u0301Β",
    "1Σ", "ΑΣ1", "ὈΔΥΣΣΕΎΣ ΚΑΙ ΠΗΝΕΛΌΠΗ", "\u0130stanbul", "\u212a\u212b\u2126", "Stra\u00dfe \u1e9e", "ǅǄǆ",
    "ΑΣ\u00ad", "ΑΣ\u00adΒ", "Σ\U0001d400", "\U0001d400Σ", "ᾈᾼ", "\U00010400\U0001e900", "ΑΣ\U000e0001", "ᏸꭰ",
]
for s in samples:
    print("S\t%s\t%s" % (json.dumps(s), json.dumps(s.lower())))
