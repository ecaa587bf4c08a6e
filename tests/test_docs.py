"""README.md and docs/*.md: links resolve, commands name real things, folders flow, snippets run.

Every fenced ``python`` / ``bash`` block of the pages in ``CHECKED`` carries a marker comment on the line above it:

* ``<!-- docs-test: run -->``   executed as written (cheap), in a fresh "clone" of the repository (a temporary folder
  of links to the checkout, with ``../shared/data`` beside it), in page order;
* ``<!-- docs-test: chain -->`` executed by the chain tests after ``make demo`` (run with a budget of seconds) or with
  budget flags appended to the training commands;
* ``<!-- docs-test: check -->`` not executed (minutes to hours, or needs the Hub), only checked statically.

Static checks on every marked block: commands use the virtual environment by path (``.venv/bin/...``), every script,
module, console script and make target they name exists, every ``$VAR`` is set earlier on the page, and every local
folder a command or snippet reads (``--model_name_or_path runs/x``, ``from_pretrained("runs/x")``, ...) is written by
an earlier command of the same page under the same name.
"""

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LDNET_SHARED_DATA", REPO.parent / "shared" / "data"))
README = REPO / "README.md"
DOCS = REPO / "docs"

#: every page: each python / bash block must be marked and pass the command / folder checks
CHECKED = ["README.md", *sorted(str(p.relative_to(REPO)) for p in DOCS.glob("*.md"))]
#: folders `make demo` writes (examples/demo.py: LDNET_DEMO_OUT, default runs/demo; model + processor in model/)
DEMO_WRITES = ("runs/demo", "runs/demo/model")
#: folders the other make targets write
MAKE_WRITES = {"demo": DEMO_WRITES, "generalist": ("runs/generalist",)}
#: budget the chain tests give the demo (environment knobs of examples/demo.py) and the training commands
DEMO_BUDGET = {"LDNET_DEMO_STEPS": "2", "LDNET_DEMO_TRAIN": "8", "LDNET_DEMO_DEV": "4", "LDNET_DEMO_THREADS": "1"}
TRAIN_BUDGET = ("--max_steps 2 --max_train_samples 8 --max_eval_samples 4 --max_predict_samples 4 "
                "--per_device_train_batch_size 4 --use_cpu true")
SCORES_BUDGET = "--max_samples 8 --device cpu"
#: pages whose `chain` blocks form the training chain (the others load what `make demo` saves)
TRAINING_CHAIN_PAGES = ("docs/training.md",)

MARK = re.compile(r"^<!--\s*docs-test:\s*(\w+)\s*-->$")
FENCE = re.compile(r"^```(\S*)\s*$")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)\)")
READ_FLAGS = {"--model_name_or_path", "--model", "--teacher_scores", "--data_dir", "--data", "--pretrain", "--ft_pt",
              "--ft_raw", "--ft_pt_shuffle", "--fewshot", "--zeroshot", "--label_order", "--train_file",
              "--validation_file", "--test_file", "--recipe"}
WRITE_FLAGS = {"--output_dir", "--out", "--out_dir", "--cache_dir"}
BARE_TOOLS = {"python", "pip", "accelerate", "pytest", "ruff", "uvicorn", "gradio"}
PY_READS = [r"from_pretrained\(\s*\"([^\"]+)\"", r"\bmodel\s*=\s*\"([^\"]+)\"", r"load_unified\(\s*\"([^\"]+)\"",
            r"InferenceSession\(\s*\"([^\"]+)\"", r"\"image\":\s*\"([^\"]+)\"", r"open\(\s*\"([^\"]+)\"",
            r"data_files=\{[^}]*?:\s*\"([^\"]+)\""]
PY_WRITES = [r"save_pretrained\(\s*\"([^\"]+)\"", r"push_to_hub\(\s*\"([^\"]+)\"", r"\.save\(\s*\"([^\"]+)\"",
             r"convert_benchmark\(\s*\"[^\"]+\",\s*\"[^\"]+\",\s*\"([^\"]+)\"", r"export_onnx\(\s*\w+,\s*\"([^\"]+)\""]


@dataclass
class Block:
    page: str
    line: int
    lang: str
    code: str
    mark: str | None


def page_paths() -> list[Path]:
    """Pages whose links are checked: the README, docs/ and the other top-level Markdown files."""
    return [README, *sorted(DOCS.glob("*.md")), *sorted(p for p in REPO.glob("*.md") if p != README)]


def blocks(page: Path) -> list[Block]:
    out, lines, i = [], page.read_text(encoding="utf-8").splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        prev = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        mark = MARK.match(prev)
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        out.append(Block(str(page.relative_to(REPO)), i + 1, m.group(1), "\n".join(lines[i + 1 : j]) + "\n",
                         mark.group(1) if mark else None))
        i = j + 1
    return out


def prose(page: Path) -> str:
    """The page without fenced blocks (links and headings inside code are not links or headings)."""
    return re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in prose(page).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def shell_commands(code: str) -> list[str]:
    """One string per command: continuation lines joined, comments dropped, split on ; && || |."""
    joined = re.sub(r"\\\n\s*", " ", code)
    cmds = []
    for line in joined.splitlines():
        line = re.sub(r"(^|\s)#\s.*$", "", line).strip()
        if not line or line.startswith("#"):
            continue
        # keep `$(...)` intact: split outside of it only
        depth, cur, parts, k = 0, "", [], 0
        while k < len(line):
            c = line[k]
            if line.startswith("$(", k):
                depth += 1
            elif c == ")" and depth:
                depth -= 1
            if depth == 0 and (line.startswith("&&", k) or line.startswith("||", k)):
                parts.append(cur)
                cur, k = "", k + 2
                continue
            if depth == 0 and c in ";|":
                parts.append(cur)
                cur, k = "", k + 1
                continue
            cur += c
            k += 1
        parts.append(cur)
        cmds.extend(p.strip() for p in parts if p.strip())
    return cmds


def console_scripts() -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    text = cfg.get("options.entry_points", "console_scripts", fallback="")
    return {ln.split("=")[0].strip() for ln in text.splitlines() if "=" in ln}


def make_targets() -> set[str]:
    return set(re.findall(r"^([\w.-]+):", (REPO / "Makefile").read_text(), flags=re.M))


def module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


# ---------------------------------------------------------------------------------------------------------------
# static checks
# ---------------------------------------------------------------------------------------------------------------


def test_readme_fits():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= 350, f"README.md has {n} lines (limit 350): move detail to docs/"
    text = README.read_text(encoding="utf-8")
    assert text.index("make demo") < 400 and "make test" in text[:600], "the two commands come first"


@pytest.mark.parametrize("page", page_paths(), ids=lambda p: str(p.relative_to(REPO)))
def test_links_resolve(page):
    bad = []
    for target in LINK.findall(prose(page)):
        if re.match(r"^[a-z]+:", target):  # http(s), mailto
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target}: no heading with anchor #{anchor} in {dest.relative_to(REPO)}")
    assert not bad, f"{page.relative_to(REPO)}: dead links:\n" + "\n".join(bad)


@pytest.mark.parametrize("page", page_paths(), ids=lambda p: str(p.relative_to(REPO)))
def test_named_repo_files_exist(page):
    """`examples/x.py`, `trainers/metrics/ldnet_uie` ... quoted in the prose name files that exist."""
    named = re.findall(r"`((?:modeling_ldnet|processing|trainers|serving|tests|bench|examples)/[\w/.-]*)`", prose(page))
    missing = sorted({n for n in named if not (REPO / n.rstrip("/")).exists() and "*" not in n})
    assert not missing, f"{page.relative_to(REPO)} names files that do not exist: {missing}"


def test_checked_pages_exist_and_blocks_are_marked():
    unmarked = []
    for name in CHECKED:
        for b in blocks(REPO / name):
            if b.lang in ("python", "bash") and b.mark not in ("run", "chain", "check"):
                unmarked.append(f"{b.page}:{b.line} ({b.lang}, marker {b.mark!r})")
    assert not unmarked, "blocks without <!-- docs-test: run|chain|check -->:\n" + "\n".join(unmarked)


def test_json_blocks_parse():
    for name in CHECKED:
        for b in blocks(REPO / name):
            if b.lang == "json" and b.mark == "run":
                json.loads(b.code)


def test_readme_numbers_are_in_results():
    """Every number of "Results at a glance" is quoted from bench/RESULTS.md."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Results at a glance") :]
    section = section[: section.index("\n## ", 3)]
    results = (REPO / "bench" / "RESULTS.md").read_text(encoding="utf-8")
    missing = [x for x in re.findall(r"\d+\.\d+", section) if x not in results]
    assert not missing, f"README numbers not in bench/RESULTS.md: {missing}"


def _check_page(name: str, workspace: set[str] | None = None) -> list[str]:
    """Commands name existing things; variables are set before use; read folders are written before.

    A read is checked when its first path component is a workspace folder: ``runs/``, ``data/`` or anything the page
    writes somewhere (so ``my-ldnet`` read before it is saved fails, while a Hub id or the reader's own files pass).
    """
    if workspace is None:  # first pass: what does the page write at all?
        written_anywhere: set[str] = set()
        _check_page(name, workspace=written_anywhere)
        workspace = {"runs", "data"} | {w.split("/")[0] for w in written_anywhere}
        collecting = False
    else:
        collecting = True
    problems: list[str] = []
    scripts, targets = console_scripts(), make_targets()
    defined: set[str] = {"LDNET_SHARED_DATA", "HOME", "PWD"}
    written: set[str] = workspace if collecting else set()

    def read(path: str, where: str) -> None:
        path = path.rstrip("/")
        if collecting or not path or path.startswith(("$", "/", "..", "~")) or "{" in path:
            return
        if path.split("/")[0] not in workspace:
            return
        if not any(path == w or path.startswith(w + "/") for w in written):
            problems.append(f"{where}: reads {path!r}, which no earlier command of the page writes")

    for b in blocks(REPO / name):
        where = f"{b.page}:{b.line}"
        if b.lang == "python" and b.mark:
            for k, line in enumerate(b.code.splitlines()):  # line by line: a snippet may write, then read
                for pattern in PY_READS:
                    for path in re.findall(pattern, line):
                        read(path, f"{b.page}:{b.line + 1 + k}")
                for pattern in PY_WRITES:
                    written.update(p.rstrip("/") for p in re.findall(pattern, line))
            continue
        if b.lang != "bash" or not b.mark:
            continue
        for cmd in shell_commands(b.code):
            sub = re.match(r"^(\w+)=\$\((.*)\)$", cmd)
            if sub:  # VAR=$(command): the inner command is a one-liner (python -c); the variable is now set
                defined.add(sub.group(1))
                continue
            for var in re.findall(r"\$\{?(\w+)", cmd):
                if var not in defined and not re.search(rf"\b{var}=", cmd):
                    problems.append(f"{where}: ${var} is used before it is set: {cmd[:80]}")
            try:
                words = shlex.split(cmd)
            except ValueError:
                words = cmd.split()
            while words and re.match(r"^(export\s+)?\w+=", words[0]) or words[:1] == ["export"]:
                if words[0] == "export":
                    words = words[1:]
                    continue
                defined.add(words[0].split("=")[0])
                words = words[1:]
            if not words or words[0] in ("for", "do", "done", "then", "fi", "if", "cd", "echo", "curl"):
                continue
            tool = words[0]
            if tool in BARE_TOOLS or tool.startswith("ldnet-"):
                problems.append(f"{where}: `{tool}` needs the virtual environment: write .venv/bin/{tool}")
                continue
            if tool == "make":
                for t in words[1:]:
                    if t not in targets:
                        problems.append(f"{where}: no make target {t!r}")
                    written.update(MAKE_WRITES.get(t, ()))
                continue
            if tool == "bash":  # a repository script: it must exist
                if len(words) < 2 or not (REPO / words[1]).is_file():
                    problems.append(f"{where}: bash runs no existing script: {cmd[:80]}")
                elif words[1].startswith("bench/"):
                    written.add("runs/bench")
                continue
            if tool == "python3":
                if words[1:3] != ["-m", "venv"]:
                    problems.append(f"{where}: use .venv/bin/python, not python3: {cmd[:80]}")
                continue
            if tool.startswith(".venv/bin/"):
                exe = tool.removeprefix(".venv/bin/")
                if exe == "python":
                    if words[1:2] == ["-m"]:
                        if not module_exists(words[2]):
                            problems.append(f"{where}: no module {words[2]!r}")
                    elif words[1:2] != ["-c"] and not (REPO / words[1]).is_file():
                        problems.append(f"{where}: no script {words[1]!r}")
                elif exe == "accelerate":
                    script = next((w for w in words if w.endswith(".py")), None)
                    if script is None or not (REPO / script).is_file():
                        problems.append(f"{where}: accelerate launches no existing script: {cmd[:80]}")
                elif exe not in scripts and exe not in ("pip",):
                    problems.append(f"{where}: {exe!r} is not a console script of setup.cfg")
                if exe == "ldnet-serve" and len(words) > 1 and not words[1].startswith("-"):
                    read(words[1], where)
                if words[1:3] == ["-m", "modeling_ldnet.onnx_ldnet"]:
                    read(words[3], where)
                # flags: reads first (a command may read and write the same name), then writes
                for k, w in enumerate(words):
                    if w in READ_FLAGS:
                        for v in words[k + 1 :]:
                            if v.startswith("--"):
                                break
                            read(v, where)
                for k, w in enumerate(words):
                    if w in WRITE_FLAGS and k + 1 < len(words):
                        written.add(words[k + 1].rstrip("/"))
                if exe == "python" and words[1:2] and words[1].startswith("bench/"):
                    written.add("runs/bench")  # bench/_common.py: results and plots under $LDNET_BENCH_OUT
                if words[1:4] == ["-m", "processing", "convert"] and len(words) > 6:
                    written.add(words[6].rstrip("/"))
                continue
            problems.append(f"{where}: unknown command {tool!r} (teach tests/test_docs.py about it)")
    return problems


@pytest.mark.parametrize("name", CHECKED)
def test_commands_and_folders(name):
    problems = _check_page(name)
    assert not problems, "\n".join(problems)


def test_checker_catches_defects(tmp_path, monkeypatch):
    """The checker itself: a read before the write, a bare tool, a missing script, an unset variable."""
    page = tmp_path / "bad.md"
    page.write_text(textwrap.dedent("""\
        <!-- docs-test: check -->
        ```bash
        .venv/bin/ldnet-train --model_name_or_path runs/nowhere --output_dir runs/x
        python examples/run_uie.py
        .venv/bin/python examples/no_such_script.py --out $UNSET
        ```
        <!-- docs-test: check -->
        ```python
        ie = pipeline("universal-ie", model="runs/x", trust_remote_code=True)
        ie2 = pipeline("universal-ie", model="runs/conll04/teacher/best", trust_remote_code=True)
        ```
        """))
    for name in ("Makefile", "setup.cfg"):
        shutil.copy(REPO / name, tmp_path / name)
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    problems = "\n".join(_check_page("bad.md"))
    assert "reads 'runs/nowhere'" in problems
    assert "`python` needs the virtual environment" in problems
    assert "no script 'examples/no_such_script.py'" in problems
    assert "$UNSET is used before it is set" in problems
    assert "reads 'runs/conll04/teacher/best'" in problems
    assert "reads 'runs/x'" not in problems  # written by the first command


# ---------------------------------------------------------------------------------------------------------------
# executed snippets
# ---------------------------------------------------------------------------------------------------------------


def make_clone(root: Path) -> Path:
    """A stand-in for a fresh clone: links to the checkout's files, ../shared/data beside it, nothing in runs/."""
    clone = root / "ldnet"
    clone.mkdir()
    skip = {"runs", "data", ".git", "my-ldnet", "ldnet-conll04", "ldnet.onnx", "tweet1.jpg", "__pycache__"}
    for entry in REPO.iterdir():
        if entry.name in skip or entry.name.endswith(".egg-info"):
            continue
        if entry.name == "examples":  # copied: examples/demo.py resolves its default output from its own path
            shutil.copytree(entry, clone / "examples", ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (clone / entry.name).symlink_to(entry)
    (root / "shared").mkdir()
    (root / "shared" / "data").symlink_to(SHARED_DATA)
    return clone


DRIVER = textwrap.dedent("""\
    import json, os, subprocess, sys, time
    t0 = time.perf_counter()
    for page, line, lang, code in json.load(open(sys.argv[1])):
        print(f"--- {page}:{line} ({lang}) at {time.perf_counter() - t0:.1f} s", flush=True)
        if lang == "bash":
            subprocess.run(["bash", "-euo", "pipefail", "-c", code], check=True)
        else:
            namespaces = globals().setdefault("_namespaces", {})
            exec(compile(code, f"{page}:{line}", "exec"), namespaces.setdefault(page, {"__name__": "__main__"}))
    """)


def run_blocks(clone: Path, todo: list[tuple[str, int, str, str]], timeout: int = 1200) -> str:
    """Run the blocks in order in one interpreter (one namespace per page) with the clone as working directory."""
    (clone.parent / "blocks.json").write_text(json.dumps(todo))
    (clone.parent / "driver.py").write_text(DRIVER)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO)}
    env.pop("LDNET_DEMO_OUT", None)
    env.pop("LDNET_BENCH_OUT", None)
    cmd = [str(REPO / ".venv" / "bin" / "python"), str(clone.parent / "driver.py"), str(clone.parent / "blocks.json")]
    try:
        proc = subprocess.run(cmd, cwd=clone, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        out = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        pytest.fail(f"snippets still running after {timeout} s; last started:\n{out[-2000:]}")
    assert proc.returncode == 0, f"snippet failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    return proc.stdout


def marked(mark: str, pages: list[str]) -> list[tuple[str, int, str, str]]:
    return [(b.page, b.line, b.lang, b.code) for name in pages for b in blocks(REPO / name)
            if b.mark == mark and b.lang in ("python", "bash")]


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs the staged data (../shared/data)")
def test_run_snippets(tmp_path):
    """Every `run` block, as written, in page order, from a fresh clone."""
    todo = marked("run", CHECKED)
    assert len(todo) >= 8
    out = run_blocks(make_clone(tmp_path), todo)
    assert "label 'city' is not in the schema" in out
    assert "1.0 0.0" in out                                        # the metric example of training.md
    assert "{'train': 922, 'dev': 231, 'test': 288}" in out        # datasets.md reads back the converted split


def demo_command() -> str:
    """The `make demo` recipe, with the Makefile's variables filled in."""
    text = (REPO / "Makefile").read_text()
    recipe = re.search(r"^demo:.*\n((?:\t.*\n)+)", text, flags=re.M).group(1).strip()
    return recipe.replace("$(BIN)", ".venv/bin").replace("$(VENV)", ".venv")


def test_demo_chain(tmp_path):
    """make demo (seconds of training) -> runs/demo/model -> every `chain` snippet that loads it (README, docs/)."""
    clone = make_clone(tmp_path)
    env_prefix = " ".join(f"{k}={v}" for k, v in DEMO_BUDGET.items())
    run_blocks(clone, [("Makefile", 0, "bash", f"{env_prefix} {demo_command()}")])
    for name in ("config.json", "model.safetensors", "processor_config.json"):
        assert (clone / "runs" / "demo" / "model" / name).is_file(), f"make demo did not save runs/demo/model/{name}"
    todo = []
    for page, line, lang, code in marked("chain", [n for n in CHECKED if n not in TRAINING_CHAIN_PAGES]):
        if lang == "bash":
            assert all(c.startswith("make ") for c in shell_commands(code)), f"{page}:{line}: only make lines"
            continue  # make demo ran above; make test would run this suite again
        todo.append((page, line, lang, code))
    out = run_blocks(clone, todo)
    assert "{'rel':" in out or "{'ent':" in out or "{}" in out     # the pipeline printed answers
    assert (clone / "ldnet-conll04" / "README.md").is_file()       # hub-onnx.md saved a folder with its card


@pytest.mark.full
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs the staged data (../shared/data)")
def test_training_chain(tmp_path):
    """training.md as written, with budget flags appended: teacher -> scores -> student -> pipeline on the teacher."""
    clone = make_clone(tmp_path)
    todo = []
    for page, line, lang, code in marked("chain", list(TRAINING_CHAIN_PAGES)):
        if lang == "bash":
            code = re.sub(r"\\\n\s*", " ", code)
            code = re.sub(r"^(\.venv/bin/ldnet-train .*)$", rf"\1 {TRAIN_BUDGET}", code, flags=re.M)
            code = re.sub(r"^(\.venv/bin/ldnet-teacher-scores .*)$", rf"\1 {SCORES_BUDGET}", code, flags=re.M)
        todo.append((page, line, lang, code))
    out = run_blocks(clone, todo)
    for folder in ("runs/conll04-teacher", "runs/conll04-student"):
        assert (clone / folder / "config.json").is_file(), folder
    assert (clone / "runs" / "conll04-scores" / "manifest.json").is_file()
    assert "{'rel':" in out or "{'ent':" in out or "{}" in out
