"""Clarion's Handlebars engine: byte-for-byte conformance with Handlebars.js on node, Pinpoint helpers, fuzzing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clarion.templates.handlebars import Environment, TemplateSyntaxError, apply_defaults, compile_template, render
from clarion.templates.helpers import java_date_format

HANDLEBARS_VERSION = "4.7.8"
CORPUS: list[dict[str, Any]] = json.loads((Path(__file__).parent / "handlebars_corpus.json").read_text("utf-8"))

# Reads the corpus on stdin and prints, per case, {"out": rendered} or {"error": message}.
NODE_ORACLE = r"""
const Handlebars = require(process.argv[2]);
for (const m of ['log', 'info', 'debug', 'warn', 'error']) {
  console[m] = (...args) => process.stderr.write(args.join(' ') + '\n');  // keep stdout for the results
}
let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  const results = JSON.parse(input).map((c) => {
    try {
      return { out: Handlebars.create().compile(c.template)(c.context) };
    } catch (e) {
      return { error: String(e && e.message) };
    }
  });
  process.stdout.write(JSON.stringify(results));
});
"""


def _node_handlebars_dir() -> Path:
    cache = (
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "clarion-tests" / f"hbs-{HANDLEBARS_VERSION}"
    )
    return cache


@pytest.fixture(scope="session")
def handlebars_js() -> Path:
    """handlebars@4.7.8 installed in a cache folder outside the repo (skips when node/npm are unusable)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node and npm are needed to run Handlebars.js as the conformance oracle")
    prefix = _node_handlebars_dir()
    module = prefix / "node_modules" / "handlebars"
    if not (module / "package.json").exists():
        prefix.mkdir(parents=True, exist_ok=True)
        try:
            proc = subprocess.run(
                [
                    npm,
                    "install",
                    "--prefix",
                    str(prefix),
                    f"handlebars@{HANDLEBARS_VERSION}",
                    "--no-audit",
                    "--no-fund",
                ],
                capture_output=True,
                text=True,
                timeout=180,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"npm install handlebars@{HANDLEBARS_VERSION} failed: {exc}")
        if proc.returncode != 0 or not (module / "package.json").exists():
            pytest.skip(f"npm install handlebars@{HANDLEBARS_VERSION} failed: {proc.stderr.strip()[-500:]}")
    return module


def run_node_oracle(module: Path, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Render `cases` with Handlebars.js."""
    script = module.parent.parent / "oracle.js"
    script.write_text(NODE_ORACLE, "utf-8")
    proc = subprocess.run(
        ["node", str(script), str(module)],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(proc.stdout)


@pytest.fixture(scope="session")
def oracle(handlebars_js: Path) -> dict[str, dict[str, Any]]:
    results = run_node_oracle(handlebars_js, CORPUS)
    return {case["name"]: result for case, result in zip(CORPUS, results, strict=True)}


def test_corpus_is_well_formed() -> None:
    names = [case["name"] for case in CORPUS]
    assert len(names) == len(set(names))
    assert len(CORPUS) >= 80


@pytest.mark.parametrize("case", CORPUS, ids=[case["name"] for case in CORPUS])
def test_conformance_with_handlebars_js(case: dict[str, Any], oracle: dict[str, dict[str, Any]]) -> None:
    expected = oracle[case["name"]]
    if case.get("error"):
        assert "error" in expected, f"Handlebars.js accepted a case marked as an error: {expected}"
        with pytest.raises(TemplateSyntaxError):
            Environment().compile(case["template"])
        return
    assert "out" in expected, f"Handlebars.js failed on the case: {expected.get('error')}"
    assert render(case["template"], case["context"]) == expected["out"]
    if "expected" in case:
        assert expected["out"] == case["expected"]


# -- syntax errors ------------------------------------------------------------------------------------------------


def test_syntax_error_names_line_and_column_of_unclosed_block() -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        compile_template("{{#if a}}\nfoo\n  {{name}} and more")
    message = str(info.value)
    assert message.startswith("line 3, column 20: ")  # end of the template
    assert "unclosed {{#if}} block opened at line 1, column 1" in message
    assert (info.value.line, info.value.column) == (3, 20)


def test_syntax_error_mismatched_close_points_at_close_tag() -> None:
    with pytest.raises(TemplateSyntaxError, match=r"line 2, column 3: \{\{/each\}\} does not match \{\{#if\}\}"):
        compile_template("{{#if a}}\n  {{/each}}")


def test_syntax_error_unexpected_token() -> None:
    with pytest.raises(TemplateSyntaxError, match=r"line 1, column 12: expected '}}' to close the mustache, got 'b'"):
        compile_template("{{name a=1 b}}")


def test_unsupported_features_are_syntax_errors() -> None:
    for source in ("{{#> layout}}x{{/layout}}", "{{{{raw}}}}x{{{{/raw}}}}", "{{#*foo}}x{{/foo}}"):
        with pytest.raises(TemplateSyntaxError):
            compile_template(source)


# -- runtime robustness -------------------------------------------------------------------------------------------


def test_bad_arguments_render_empty() -> None:
    assert render('[{{add "x" 1}}|{{divide 1 0}}|{{abbreviate v "z"}}]', {"v": "abc"}) == "[||abc]"
    assert render("[{{#if}}x{{/if}}{{#each}}y{{/each}}]", {}) == "[]"


def test_non_dict_contexts_render() -> None:
    assert render("{{this}}|{{a}}", "str") == "str|"
    assert render("{{this}}", None) == ""
    assert render("{{length}}", [1, 2]) == "2"


def test_compile_cache_returns_same_template() -> None:
    env = Environment(cache_size=2)
    first = env.compile("{{a}}")
    assert env.compile("{{a}}") is first
    env.compile("{{b}}")
    env.compile("{{c}}")
    assert env.compile("{{a}}") is not first


# -- DefaultSubstitutions -----------------------------------------------------------------------------------------


def test_default_substitutions_nested_and_flat() -> None:
    tpl = "Hi {{name}}, {{Attributes.Purchase}} / {{User.UserAttributes.FirstName}}"
    defaults = json.dumps({"name": "there", "Attributes": {"Purchase": "Test"}, "User.UserAttributes.FirstName": "F"})
    assert render(tpl, {}, defaults) == "Hi there, Test / F"
    context = {"name": "Ann", "Attributes": {"Purchase": ["Shoes"], "Other": 1}}
    assert render(tpl, context, defaults) == "Hi Ann, Shoes / F"
    assert context == {"name": "Ann", "Attributes": {"Purchase": ["Shoes"], "Other": 1}}
    assert render(tpl, {"name": ""}, {"name": "x"}) == "Hi x,  / "
    assert apply_defaults({"a": 1}, "not json") == {"a": 1}


# -- Pinpoint helpers (expected values follow Pinpoint's documented examples) ---------------------------------------


@pytest.mark.parametrize(
    ("template", "context", "expected"),
    [
        ("{{and a b}}|{{and a c}}", {"a": "x", "b": 1, "c": ""}, "true|false"),
        ('{{and a b yes="Y" no="N"}}', {"a": "x", "b": 0}, "N"),
        ("{{#and a b}}both{{else}}not{{/and}}", {"a": 1, "b": [2]}, "both"),
        ('{{or a b yes="y"}}', {"a": "", "b": "z"}, "y"),
        ("{{#not a}}none{{/not}}", {"a": []}, "none"),
        (
            '{{eq User.UserAttributes.Age.[0] 30 yes="thirty" no="other"}}',
            {"User": {"UserAttributes": {"Age": ["30"]}}},
            "thirty",
        ),
        ('{{#eq a "x"}}X{{else}}not X{{/eq}}', {"a": "y"}, "not X"),
        ('{{neq a "x"}}', {"a": "y"}, "true"),
        ("{{gt a 10}} {{gte a 12}} {{lt a 12}} {{lte a 11}}", {"a": "12"}, "true true false false"),
        ("{{#if (gt a 2)}}big{{/if}}", {"a": 3}, "big"),
        ("{{abbreviate v 5}}", {"v": "Hello World"}, "He..."),
        ("{{abbreviate v 20}}", {"v": "Hello World"}, "Hello World"),
        ("{{capitalize v}}", {"v": "hello wORLD"}, "Hello WORLD"),
        ("{{capitalize v fully=true}}", {"v": "hello wORLD"}, "Hello World"),
        ("{{capitalizeFirst v}}", {"v": "hello world"}, "Hello world"),
        ('{{center v size=9 pad="*"}}', {"v": "abc"}, "***abc***"),
        ("{{center v size=6}}|", {"v": "abc"}, " abc  |"),
        ('{{cut v " "}} {{cut v "l"}}', {"v": "hello world"}, "helloworld heo word"),
        (
            '{{inflect 0 "item" "items"}} {{inflect 1 "item" "items"}} {{inflect 2 "item" "items" true}}',
            {},
            "items item 2 items",
        ),
        ('{{inflect n "string" "strings" includeCount=true}}', {"n": 1}, "1 string"),
        ('{{join xs " | "}}', {"xs": ["a", "b", "c"]}, "a | b | c"),
        ('{{{join xs ", " prefix="<" suffix=">"}}}', {"xs": ["a", "b"]}, "<a, b>"),
        ('{{ljust v 6 pad="."}}|{{rjust v 6 pad="."}}', {"v": "ab"}, "ab....|....ab"),
        ("{{lower v}} {{upper v}}", {"v": "MiXed"}, "mixed MIXED"),
        ('{{capitalizeFirst (lower "JANE")}}', {}, "Jane"),
        (
            "{{ordinalize 1}} {{ordinalize 2}} {{ordinalize 3}} {{ordinalize 11}} "
            "{{ordinalize 21}} {{ordinalize 22}} {{ordinalize 112}}",
            {},
            "1st 2nd 3rd 11th 21st 22nd 112th",
        ),
        ('{{replace v "World" "There"}}', {"v": "Hello World World"}, "Hello There There"),
        ("{{slugify v}}", {"v": "  Hello, Wörld & Friends!  "}, "hello-world-friends"),
        ("{{stripTags v}}", {"v": "<p>Hi <b>there</b></p>"}, "Hi there"),
        ("{{substring v 0 5}}|{{substring v 6}}|{{substring v 3 100}}", {"v": "Hello World"}, "Hello|World|lo World"),
        ("{{yesno t}} {{yesno f}} {{yesno n}}", {"t": True, "f": False, "n": None}, "yes no maybe"),
        ('{{yesno t yes="Y" no="N" maybe="M"}}{{yesno n yes="Y" no="N" maybe="M"}}', {"t": False, "n": None}, "NM"),
        (
            "{{add 1 2}} {{add a 0.5}} {{subtract 10 4}} {{multiply 3 2.5}} {{divide 10 4}} {{divide 10 2}}",
            {"a": ["1"]},
            "3 1.5 6 7.5 2.5 5",
        ),
        (
            "{{modulo 10 3}} {{modulo -7 3}} {{ceiling 1.2}} {{floor 1.8}} {{round 1.5}} {{round 1.4}} {{round -1.5}}",
            {},
            "1 -1 2 1 2 1 -1",
        ),
        ("{{encode64 v}}|{{decode64 (encode64 v)}}", {"v": "Hello World"}, "SGVsbG8gV29ybGQ&#x3D;|Hello World"),
        ("{{md5 v}}", {"v": "Hello"}, "8b1a9953c4611296a827abf8c47804d7"),
        ("{{sha256 v}}", {"v": "Hello"}, "185f8db32271fe25f561a6fc938b2e264306ec304eda518007d1764826381969"),
        ("{{substring (sha512 v) 0 16}}", {"v": "Hello"}, "3615f80c9d293ed7"),
        (
            '{{dateFormat d}}|{{dateFormat d "full"}}|{{dateFormat d "long"}}|{{dateFormat d "short"}}',
            {"d": "2024-03-05T14:07:09Z"},
            "Mar 5, 2024|Tuesday, March 5, 2024|March 5, 2024|3/5/24",
        ),
        ('{{dateFormat d "yyyy-MM-dd HH:mm:ss"}}', {"d": "2024-03-05T14:07:09Z"}, "2024-03-05 14:07:09"),
        (
            '{{dateFormat d outputFormat="EEE, d MMM yyyy h:mm a z" tz="America/Los_Angeles"}}',
            {"d": "2024-03-05T14:07:09Z"},
            "Tue, 5 Mar 2024 6:07 AM PST",
        ),
        (
            '{{dateFormat d inputFormat="dd/MM/yyyy" outputFormat="MMMM d, yyyy"}}',
            {"d": "31/01/2024"},
            "January 31, 2024",
        ),
        (
            '{{dateFormat d "yyyy-MM-dd\'T\'HH:mmXXX" tz="Asia/Seoul"}}',
            {"d": "2024-03-05T14:07:09Z"},
            "2024-03-05T23:07+09:00",
        ),
        ("[{{dateFormat d}}]", {"d": "not a date"}, "[]"),
        ("{{#each xs}}{{#eq this 2}}two{{else}}{{this}}{{/eq}}{{/each}}", {"xs": [1, 2, 3]}, "1two3"),
    ],
)
def test_pinpoint_helpers(template: str, context: dict[str, Any], expected: str) -> None:
    assert render(template, context) == expected


def test_now_uuid_and_java_dates() -> None:
    assert len(render('{{now "yyyy"}}', {})) == 4
    value = render("{{uuid}}", {})
    assert len(value) == 36 and value.count("-") == 4
    from datetime import UTC, datetime

    dt = datetime(2024, 1, 2, 0, 5, 6, 7000, tzinfo=UTC)
    assert java_date_format(dt, "yy/M/d k:mm:ss.SSS 'at' ''h'' a Z X") == "24/1/2 24:05:06.007 at '12' AM +0000 Z"


# -- fuzzing ------------------------------------------------------------------------------------------------------

_ALPHABET = st.sampled_from(
    [
        *"{{{{}}}}##//~~!!^^&>*=.@[]|()\"'  \nabcxyz019-",
        "else",
        "if",
        "each",
        "this",
        "../",
        "{{",
        "}}",
        "as |x|",
        "inline",
    ]
)
_CONTEXTS = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", "x", "this", "0"]), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.lists(_ALPHABET, max_size=30).map("".join), contexts=st.lists(_CONTEXTS, min_size=1, max_size=3))
def test_fuzz_only_syntax_errors_and_renders_never_raise(source: str, contexts: list[Any]) -> None:
    env = Environment()
    try:
        template = env.compile(source)
    except TemplateSyntaxError:
        return
    for context in contexts:
        assert isinstance(template.render(context), str)


@settings(max_examples=300, deadline=None)
@given(
    path=st.lists(st.sampled_from(["a", "b", "[0]", "[x y]", "length", "this", ".."]), min_size=1, max_size=4),
    helper=st.sampled_from(["", "upper ", "add 1 ", "dateFormat ", "abbreviate ", "join ", "eq 1 ", "substring "]),
    context=_CONTEXTS,
)
def test_fuzz_helpers_on_random_data(path: list[str], helper: str, context: Any) -> None:
    source = "{{" + helper + ".".join(path) + "}}"
    try:
        template = compile_template(source)
    except TemplateSyntaxError:
        return
    assert isinstance(template.render(context), str)
