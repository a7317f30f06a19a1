#!/usr/bin/env python3
"""Every README `rust` block, compiled in a fresh crate as a reader would make
it: the Install section's dependencies for the blocks under headings that name
no feature, and the features and crates a heading names for its blocks.
Usage: readme_blocks.py README.md OUT_DIR (then `cargo build --examples` there)."""

import os
import re
import sys

readme_path, out = sys.argv[1], sys.argv[2]
root = os.path.dirname(os.path.abspath(readme_path))
readme = open(readme_path).read()

# What the README's Install section lists, and what the featured sections name.
INSTALL = '''reqwest = "0.13"
serde_json = "1"
tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
anyhow = "1"
'''
FEATURED = {
    "redis": ([], ""),
    "tower": (["reqwest"], 'async-openai = { version = "0.43", default-features = false, features = ["middleware", "chat-completion"] }\ntower = "0.5"\n'),
    "reqwest-middleware": ([], 'reqwest-middleware = "0.5"\n'),
}

def heading_features(heading):
    named = re.findall(r"`([a-z-]+)`", heading.split("(", 1)[1]) if "(" in heading else []
    return [name for name in named if name in FEATURED or name == "reqwest"]

crates = {}
for match in re.finditer(r"```(rust[^\n]*)\n(.*?)```", readme, re.S):
    line = readme[: match.start()].count("\n") + 1
    headings = re.findall(r"^#{2,3} .*$", readme[: match.start()], re.M)
    features = ["reqwest"]
    extra = ""
    for feature in heading_features(headings[-1] if headings else ""):
        if feature in FEATURED:
            more, crate_lines = FEATURED[feature]
            features = sorted(set(features + [feature] + more))
            extra += crate_lines
    code = "\n".join(
        l[2:] if l.startswith("# ") else ("" if l == "#" else l)
        for l in match.group(2).split("\n")
    )
    if "fn main" not in code:
        code = "fn main() {\n" + code + "\n}\n"
    crates.setdefault((tuple(features), extra), []).append((line, code))

for n, ((features, extra), blocks) in enumerate(sorted(crates.items())):
    crate = os.path.join(out, f"readme-{n}")
    os.makedirs(os.path.join(crate, "examples"), exist_ok=True)
    os.makedirs(os.path.join(crate, "src"), exist_ok=True)
    feature_list = ", ".join(f'"{f}"' for f in features)
    open(os.path.join(crate, "Cargo.toml"), "w").write(
        f'[package]\nname = "readme-{n}"\nversion = "0.0.0"\nedition = "2024"\npublish = false\n\n'
        f'[dependencies]\nai-retry = {{ path = "{root}", features = [{feature_list}] }}\n'
        + INSTALL + extra + "\n[workspace]\n"
    )
    open(os.path.join(crate, "src", "main.rs"), "w").write("fn main() {}\n")
    for line, code in blocks:
        open(os.path.join(crate, "examples", f"line_{line}.rs"), "w").write(code)
    print(crate, features, len(blocks), "blocks")
