"""Independent Python rendering of the SuperNI prompt template in ../shared/data/superni/README.md
(Tk-Instruct DataCollatorForNI semantics), with a whitespace token counter. Writes prompt_hashes.tsv:
one row per (task, first instance, setting) with the SHA-256 of the UTF-8 source and its token count.
Run from the repository root: python3 tests/PeftLab.Tests/Data/Fixtures/make_prompt_hashes.py ../shared/data/superni
"""
import hashlib, json, os, re, string, sys

def count(s):
    return len(s.split())

def truncate(s, n):
    if count(s) <= n:
        return s
    starts = [m.start() for m in re.finditer(r"\S+", s)]
    return s[:starts[n]].rstrip()

def p(s):
    return s if s and s[-1] in string.punctuation else s + "."

def example(kind, i, ex, add_expl):
    s = p(f" {kind} Example {i} -\nInput: " + ex["input"].strip()) + "\n"
    s = p(s + " Output: " + ex["output"].strip()) + "\n"
    if add_expl and "explanation" in ex:
        s = p(s + " Explanation: " + ex["explanation"].strip()) + "\n"
    return s + "\n"

def build(task_name, task, inst, npos, nneg, add_expl, add_name, max_tokens, definition_only):
    query = p("Now complete the following example -\nInput: " + inst["input"].strip()) + "\nOutput: "
    name = task_name + ". " if add_name else ""
    definition = p("Definition: " + task["Definition"][0].strip()) + "\n\n"
    pos, neg = [], []
    if not definition_only:
        for i, ex in enumerate(task["Positive Examples"][:npos]):
            s = example("Positive", i + 1, ex, add_expl)
            if count(definition + " ".join(pos) + s + query) <= max_tokens:
                pos.append(s)
            else:
                break
        for i, ex in enumerate(task["Negative Examples"][:nneg]):
            s = example("Negative", i + 1, ex, add_expl)
            if count(definition + " ".join(pos) + " ".join(neg) + s + query) <= max_tokens:
                neg.append(s)
            else:
                break
    src = name + definition + "".join(pos) + "".join(neg) + query
    return src if count(src) <= max_tokens else truncate(src, max_tokens)

SETTINGS = {
    # name: (npos, nneg, add_expl, add_name, max_tokens, definition_only)
    "def_pos2": (2, 0, False, False, 1024, False),
    "def_only": (2, 0, False, False, 1024, True),
    "pos2_neg2_expl_name": (2, 2, True, True, 1024, False),
    "budget60": (2, 2, False, False, 60, False),
    "budget150": (2, 2, True, False, 150, False),
}

def main(root):
    rows = []
    for f in sorted(os.listdir(os.path.join(root, "tasks"))):
        task = json.load(open(os.path.join(root, "tasks", f), encoding="utf-8"))
        name = f[:-5]
        inst = task["Instances"][0]
        for setting, args in SETTINGS.items():
            src = build(name, task, inst, *args)
            rows.append((name, inst["id"], setting, hashlib.sha256(src.encode("utf-8")).hexdigest(), count(src)))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "prompt_hashes.tsv")
    with open(out, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("task\tinstance_id\tsetting\tsha256\ttokens\n")
        for r in rows:
            fh.write("\t".join(map(str, r)) + "\n")
    print(len(rows), "rows ->", out)

if __name__ == "__main__":
    main(sys.argv[1])
