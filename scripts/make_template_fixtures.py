#!/usr/bin/env python3
"""Regenerate tests/fixtures/templates/cases.json: chat templates rendered by Python jinja2.

jinja2 is configured the way transformers' apply_chat_template configures it
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, the tojson
override, raise_exception, strftime_now), except that strftime_now reads a fixed date so
the expected outputs are reproducible. The C++ suite (tests/unit/chat, test_chat) renders
the same (template, context) pairs with ember's engine and compares byte for byte.

Templates: smollm2.jinja is extracted from the SmolLM2 GGUF in models/ (when present);
the others are committed copies of published templates.

Usage: python3 scripts/make_template_fixtures.py
"""
import datetime
import json
import pathlib

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "templates"
FIXED_NOW = datetime.datetime(2024, 7, 26, 10, 30, 0)  # the C++ test injects the same time


class RaisedError(Exception):
    pass


def raise_exception(message):
    raise RaisedError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(fmt):
    return FIXED_NOW.strftime(fmt)


def make_env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols, GenerationBlock])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


class GenerationBlock(jinja2.ext.Extension):
    """{% generation %}...{% endgeneration %}: renders its body, as transformers' tracker does."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller):
        return caller()


def render(env, source, context):
    context = json.loads(json.dumps(context))  # exactly what the C++ side receives
    try:
        return {"expected": env.from_string(source).render(**context)}
    except RaisedError as e:
        return {"error": str(e), "raised": True}
    except Exception as e:  # noqa: BLE001 - any jinja2/Python error: C++ must fail too
        return {"error": f"{type(e).__name__}: {e}", "raised": False}


def extract_smollm2():
    path = ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    out = FIXTURES / "smollm2.jinja"
    if not path.exists():
        return
    import gguf
    reader = gguf.GGUFReader(str(path))
    field = reader.fields["tokenizer.chat_template"]
    out.write_text(bytes(field.parts[field.data[0]]).decode("utf-8"), encoding="utf-8")


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "City and country, e.g. Paris, France"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit"},
                "days": {"type": "integer", "description": "Forecast days", "nullable": True},
                "hours": {"type": "array", "items": {"type": "integer"}, "description": "Hours of the day"},
                "options": {"type": "object", "description": "Extra options",
                            "properties": {"detail": {"type": "boolean", "description": "More detail"}},
                            "required": ["detail"]},
            },
            "required": ["location"],
        },
    },
}
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web — returns “snippets” & links",
        "parameters": {"type": "object", "properties": {"query": {"type": "string", "description": "The query"}},
                       "required": ["query"]},
    },
}
TOOLS = [WEATHER_TOOL, SEARCH_TOOL]

CALL_WEATHER = {"id": "call_0123456789", "type": "function",
                "function": {"name": "get_weather", "arguments": {"location": "Paris, France", "unit": "celsius"}}}
CALL_SEARCH = {"id": "call_abcdefghij", "type": "function",
               "function": {"name": "search", "arguments": {"query": "ember inference engine"}}}
CALL_STRING_ARGS = {"id": "call_9876543210", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"location\": \"Tokyo\"}"}}

SYSTEM = {"role": "system", "content": "You are a concise assistant."}
CONVERSATIONS = {
    "single_user": [{"role": "user", "content": "Hello!"}],
    "system_user": [SYSTEM, {"role": "user", "content": "What is 2 + 2?"}],
    "multi_turn": [SYSTEM, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
                   {"role": "user", "content": "Tell me a joke."}],
    "multi_turn_no_system": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey."},
                             {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Goodbye!"}],
    "whitespace": [{"role": "system", "content": "  padded system  \n"},
                   {"role": "user", "content": "\n  spaced question \t"},
                   {"role": "assistant", "content": "  spaced answer  "}, {"role": "user", "content": "ok"}],
    "unicode": [{"role": "user", "content": "héllo \"quoted\" 'single' \\ backslash\nnewline 🙂 你好 \u2028 tab\t"}],
    "content_parts": [{"role": "system", "content": [{"type": "text", "text": "System as parts."}]},
                      {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe this image."}]},
                      {"role": "assistant", "content": [{"type": "text", "text": "A cat on a mat."}]},
                      {"role": "user", "content": [{"type": "text", "text": "  And the colour?  "}]}],
    "tool_call": [SYSTEM, {"role": "user", "content": "Weather in Paris?"},
                  {"role": "assistant", "content": "", "tool_calls": [CALL_WEATHER]},
                  {"role": "tool", "tool_call_id": "call_0123456789", "name": "get_weather",
                   "content": "{\"temperature\": 21, \"unit\": \"celsius\"}"},
                  {"role": "assistant", "content": "It is 21 °C in Paris."}],
    "parallel_tool_calls": [{"role": "user", "content": "Weather in Paris and search ember"},
                            {"role": "assistant", "content": "Let me check.", "tool_calls": [CALL_WEATHER, CALL_SEARCH]},
                            {"role": "tool", "tool_call_id": "call_0123456789", "content": "sunny"},
                            {"role": "tool", "tool_call_id": "call_abcdefghij", "content": "ember is fast"},
                            {"role": "user", "content": "Thanks"}],
    "tool_call_string_args": [{"role": "user", "content": "Weather in Tokyo?"},
                              {"role": "assistant", "content": None, "tool_calls": [CALL_STRING_ARGS]},
                              {"role": "tool", "tool_call_id": "call_9876543210", "content": "rain"}],
    "tool_calls_json_string_args": [
        {"role": "user", "content": "Weather in Tokyo and Oslo?"},
        {"role": "assistant", "content": "", "tool_calls": [
            CALL_STRING_ARGS, {"id": "call_5555555555", "type": "function",
                               "function": {"name": "get_weather", "arguments": "{\"location\": \"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_9876543210", "content": "rain"},
        {"role": "tool", "tool_call_id": "call_5555555555", "content": "snow"},
        {"role": "assistant", "content": "Rain in Tokyo, snow in Oslo."}],
    "reasoning_content": [{"role": "user", "content": "Is 7 prime?"},
                          {"role": "assistant", "content": "Yes.", "reasoning_content": "7 has no divisors but 1 and 7."},
                          {"role": "user", "content": "And 9?"}],
    "think_in_content": [{"role": "user", "content": "Is 9 prime?"},
                         {"role": "assistant", "content": "<think>\n9 = 3 * 3.\n</think>\n\nNo, 9 = 3 × 3."},
                         {"role": "user", "content": "OK"},
                         {"role": "assistant", "content": "<|channel>thought\nhidden<channel|>Visible answer."}],
    "not_alternating": [{"role": "user", "content": "one"}, {"role": "user", "content": "two"}],
    "assistant_last": [{"role": "user", "content": "Continue"}, {"role": "assistant", "content": "Partial answ"}],
}

TEMPLATE_VARIANTS = {
    "smollm2": [{}],
    "gemma3": [{}],
    "qwen2.5": [{}, {"tools": TOOLS}],
    "qwen3": [{}, {"tools": TOOLS}, {"enable_thinking": False}, {"enable_thinking": True, "tools": TOOLS}],
    "llama3.1": [{}, {"tools": TOOLS}, {"tools": TOOLS, "tools_in_user_message": False},
                 {"builtin_tools": ["brave_search", "wolfram_alpha", "code_interpreter"], "tools": TOOLS},
                 {"date_string": "01 Jan 2025"}],
    "mistral-v7": [{}, {"tools": TOOLS}],
    "deepseek-r1-distill": [{}],
    "gemma4-channel": [{}, {"tools": TOOLS}, {"enable_thinking": True}],
}

BASE_CONTEXT = {"bos_token": "<s>", "eos_token": "</s>", "tools": None, "documents": None}

# Small templates for expression, filter and whitespace semantics.
SNIPPETS = [
    "{{ 1 + 2 * 3 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}|{{ 2 ** 10 }}|{{ 2 ** 3 ** 2 }}|{{ -2 ** 2 }}",
    "{{ 3 / 2 }}|{{ 4 / 2 }}|{{ 1.0 }}|{{ 0.1 + 0.2 }}|{{ 1e16 }}|{{ 1e15 }}|{{ 0.00001 }}|{{ 1.5e-7 }}|{{ -0.0 }}|{{ 10 / 3 }}",
    "{{ true }}|{{ none }}|{{ [1, 'a', none, true, 1.5] }}|{{ {'a': 1, 'b': [2]} }}|{{ (1,) }}|{{ () }}|{{ 1, 2 }}",
    "{{ \"it's\" }}|{{ [\"it's\", 'a\"b', 'x\\ny', 'tab\\t', 'é'] }}|{{ ['both \\' and \"'] }}",
    "{{ 'abc'[1] }}|{{ 'hello'[1:3] }}|{{ 'hello'[::-1] }}|{{ [1,2,3,4][1:] }}|{{ [1,2,3,4][:-1] }}|{{ [1,2,3,4][::2] }}|{{ 'héllo'[1:3] }}",
    "{{ 'a' ~ 1 ~ none ~ 1.5 ~ true }}|{{ 'ab' * 3 }}|{{ [1] * 3 }}|{{ 'x' + 'y' }}|{{ [1] + [2] }}",
    "{{ 1 < 2 < 3 }}|{{ 3 > 2 > 5 }}|{{ 1 == 1.0 }}|{{ 'a' in 'abc' }}|{{ 2 not in [1, 3] }}|{{ 'k' in {'k': 1} }}",
    "{{ 1 if true else 2 }}|{{ 1 if false }}|{{ none or 'x' }}|{{ 0 and 1 }}|{{ not 0 }}|{{ [] or 'empty' }}",
    "{{ '  hi  '|trim }}|{{ 'xxhixx'|trim('x') }}|{{ 'Hello World'|lower }}|{{ 'hello world-x'|title }}|{{ 'hELLO'|capitalize }}|{{ 'a'|upper }}",
    "{{ [3, 1, 2]|sort }}|{{ ['B', 'a', 'C']|sort }}|{{ ['b', 'A', 'c']|sort(reverse=true) }}|{{ [{'n': 'b'}, {'n': 'a'}]|sort(attribute='n') }}",
    "{{ [1, 2, 3]|join(', ') }}|{{ [1, 2]|first }}|{{ [1, 2]|last }}|{{ 'abc'|list }}|{{ [1, 2, 3]|length }}|{{ 'héllo'|length }}|{{ {'a': 1}|count }}",
    "{{ [1, 2, 3, 4]|select('odd')|list }}|{{ [1, 2, 3, 4]|reject('divisibleby', 2)|list }}|{{ ['a', 'b']|map('upper')|join }}",
    "{{ msgs|selectattr('role', 'equalto', 'user')|list|length }}|{{ msgs|rejectattr('role', 'eq', 'user')|map(attribute='content')|join(',') }}|{{ msgs|map(attribute='missing', default='d')|list }}",
    "{{ d|items|list }}|{{ d.items()|list }}|{{ d.keys()|list }}|{{ d.values()|list }}|{{ d.get('a') }}|{{ d.get('z') }}|{{ d.get('z', 5) }}|{{ d|dictsort }}",
    "{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a b c'.rsplit(' ', 1) }}|{{ 'xxaxx'.strip('x') }}|{{ '\\n a \\n'.lstrip() }}|{{ 'ab'.rstrip('b') }}",
    "{{ 'hello'.startswith('he') }}|{{ 'hello'.endswith(('x', 'lo')) }}|{{ 'hello'.find('l') }}|{{ 'hello'.replace('l', 'L') }}|{{ 'hello'.replace('l', 'L', 1) }}|{{ 'a-b'.title() }}|{{ 'ab'.upper() }}|{{ ','.join(['a', 'b']) }}",
    "{{ '3'|int + 1 }}|{{ '3.7'|int }}|{{ 'abc'|int }}|{{ 'x'|int(7) }}|{{ 3.9|int }}|{{ '2.5'|float }}|{{ 'x'|float }}|{{ -3|abs }}|{{ 2.5|round }}|{{ 2.675|round(2) }}|{{ 2.1|round(0, 'ceil') }}|{{ 3|round }}",
    "{{ x|default('dflt') }}|{{ ''|default('dflt') }}|{{ ''|default('dflt', true) }}|{{ none|d('n') }}|{{ x is defined }}|{{ d.a is defined }}|{{ d.zz is undefined }}",
    "{{ 1 is number }}|{{ 1.5 is float }}|{{ 1 is integer }}|{{ true is boolean }}|{{ 'a' is string }}|{{ d is mapping }}|{{ [1] is iterable }}|{{ 'a' is sequence }}|{{ none is none }}|{{ 4 is even }}|{{ 9 is divisibleby 3 }}|{{ 'a' is in 'abc' }}|{{ 1 is eq 1 }}|{{ x is not defined }}",
    "{{ {'b': 1, 'a': [1, 2.5, none, true, 'é\"\\n']}|tojson }}|{{ [1, {'a': []}, {}]|tojson(indent=2) }}|{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}|{{ [1, 2]|tojson(separators=(',', ':')) }}",
    "{{ 'line1\\nline2\\n\\nline4'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent(3, blank=true) }}|{{ [1, 1, 2]|unique|list }}|{{ [3, 1]|max }}|{{ [3, 1]|min }}|{{ [1, 2.5]|sum }}|{{ 'abc'|reverse }}|{{ [1, 2]|reverse|list }}",
    "{% for i in range(3) %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }}/{{ loop.previtem }}/{{ loop.nextitem }};{% endfor %}",
    "{% for k, v in d.items() %}{{ k }}={{ v }};{% else %}empty{% endfor %}|{% for x in [] %}x{% else %}empty{% endfor %}|{% for x in range(10) if x is odd %}{{ x }}{{ loop.length }}{% endfor %}",
    "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}|{% for c in loop_cycle %}{{ loop.cycle('a', 'b') }}{% endfor %}",
    "{% set ns = namespace(n=0, items=[]) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% set ns.items = ns.items + [i] %}{% endfor %}{{ ns.n }} {{ ns.items }}",
    "{% set x = 1 %}{% for i in range(2) %}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }}|{% for i in range(3) %}{% if i == 1 %}{% set y = 5 %}{% endif %}{{ y }},{% endfor %}",
    "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', '?') }} {{ greet(name='C', punct='.') }}",
    "{% macro wrap() %}[{{ caller() }}]{% endmacro %}{% call wrap() %}inner{% endcall %}|{% set block %}captured {{ 1 + 1 }}{% endset %}{{ block }}",
    "{% if false %}a{% elif true %}b{% else %}c{% endif %}|{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}|{% generation %}gen {{ 1 }}{% endgeneration %}",
    "a\n  {% if true %}\n    b\n  {% endif %}\n  c {# comment #}\n{% raw %}{{ raw }}{% endraw %}\nd",
    "a  {%- if true -%}  b  {%- endif -%}  c|  {{- 'x' -}}  |{%+ if true %}y{% endif %}|x {%+ if true +%}\nz{% endif %}",
    "  {% for i in [1, 2] %}\n  item {{ i }}\n  {% endfor %}\n  {#- c -#}\n  end\n",
    "{{ 'a' }}\n{% if true %}\n  {{ 'b' }}\n{% endif %}\r\n{{ 'c' }}\r\nlast\n",
    "{{ {'a': {'b': 1}} }}|{{ {'a': {'b': 1}}.a.b }}|{{ d['a'] }}|{{ msgs[0].role }}|{{ msgs[-1]['content'] }}|{{ msgs[5] }}|",
    "{{ \"\\u00e9\\x41\\t|\" }}{{ 'adjacent' ' strings' }}|{{ 1_000 }}|{{ 0.5e1 }}",
    "{{ strftime_now('%Y-%m-%d %H:%M %a %b %d') }}|{{ 'x'|string }}|{{ 5|string }}|{{ [1]|string }}|{{ 'a' < 'b' }}|{{ [1, 2] < [1, 3] }}",
    "{{ [1, 2]|map('string')|join('-') }}|{{ ['a', 'b']|map('replace', 'a', 'x')|list }}|{{ [{'a': {'b': 2}}]|map(attribute='a.b')|first }}|{{ [[1, 2]]|map(attribute='1')|list }}",
    "{{ msgs|selectattr('content')|list|length }}|{{ [0, 1, '', 'a', none]|select|list }}|{{ msgs|selectattr('role', 'in', ['user'])|map(attribute='content')|list }}",
    "{{ none is sameas none }}|{{ true is sameas true }}|{{ 'abc'|center(9) }}|{{ 'a b  c'|wordcount }}|{{ 'x'|e }}|{{ '<&>'|escape }}",
    "{% for x in [1, 2, 3] %}{{ loop.cycle('odd', 'even') }}{{ '' if loop.last else ',' }}{% endfor %}|{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}|{% for (a, b) in [(1, 2)] %}{{ a }}{{ b }}{% endfor %}",
    "{{ [{'a': [1, {'b': 'é'}]}, 'x']|tojson(indent=2) }}|{{ {}|tojson(indent=2) }}|{{ 'a\u2028b\x7f'|tojson }}|{{ 1.0|tojson }}|{{ 1e20|tojson }}",
    "{{ 'ab'|upper }}|{{ 'ECOLE'|lower }}|{{ 'hello wORLD'.capitalize() }}|{{ \"they're bill's\".title() }}|{{ 'x'.center(5) if false else 'no' }}",
    "a {#- c -#} b|  {#- c #}\n  x|\t{% if true %}tab{% endif %}\n{%- raw -%}  {{ r }}  {%- endraw -%}  |end",
    "{% if true %}\n{% endif %}X{% for i in [1] %}  \n{% endfor %}Y\n{# c #}\nZ  {% if true -%}\n  W{%- endif %}",
    "{{ 'a\nb\r\nc'.splitlines() }}|{{ 'abcabc'.count('b') }}|{{ 'abc'.rfind('c') }}|{{ 'a-b-c'.rsplit('-') }}|{{ 'x'.join('abc') }}|{{ '12'.isdigit() }}|{{ 'Ab'.islower() }}",
    "{{ d|length }}|{{ d.a + d.b|length }}|{{ (d.b + [3])|length }}|{{ d.b|sum + 1 }}|{{ -d.a }}|{{ +d.a }}|{{ d.b[0] is odd }}",
    "{% set a, b = 1, 2 %}{{ a }}{{ b }}|{% set t = (1, 'x') %}{{ t[1] }}{{ t|length }}|{{ ((1, 2) + (3,)) }}|{{ [1, 2] == [1, 2] }}|{{ (1, 2) == [1, 2] }}",
    "{{ x is undefined and y is not defined }}|{{ x|default(y|default('both')) }}|{{ (x or 'fallback')|upper }}|{{ [x]|length }}|{{ x ~ 'tail' }}",
    "{{ 'abc' if 'b' in 'abc' else 'none' }}|{{ 'z' not in d }}|{{ 1 in [1.0] }}|{{ [1] in [[1]] }}|{{ 'a' < 'B' }}|{{ 2 >= 2.0 }}",
    "{%- for m in msgs -%}\n  {{- m.role }}: {{ m.content -}}\n  {% if not loop.last %}\n{% endif %}\n{%- endfor %}",
    "{{ 7.0 // 2 }}|{{ -7.5 // 2 }}|{{ 7.5 % 2 }}|{{ -7.5 % 2 }}|{{ 2 ** 0.5 }}|{{ 2 ** -2 }}|{{ 10 / 4 * 2 }}|{{ 1e300 * 1e300 }}|{{ (0.1 * 3)|round(2) }}",
    "{{ raise_exception('boom: ' ~ 42) }}",
    "{{ x.y }}",
    "{{ d.zz.y }}",
    "{{ 1 + 'a' }}",
    "{{ x + 1 }}",
    "{{ 1 / 0 }}",
    "{{ [1, 'a']|sort }}",
    "{{ none|tojson }}{{ x|tojson }}",
    "{{ 'a'|length }}{{ 5|length }}",
]


def snippet_context():
    return {"d": {"a": 1, "b": [1, 2]},
            "msgs": [{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"},
                     {"role": "user", "content": "u2"}],
            "loop_cycle": [1, 2, 3]}


def main():
    FIXTURES.mkdir(parents=True, exist_ok=True)
    extract_smollm2()
    env = make_env()
    cases = []
    for name, variants in TEMPLATE_VARIANTS.items():
        path = FIXTURES / f"{name}.jinja"
        if not path.exists():
            continue
        source = path.read_text(encoding="utf-8")
        for index, extra in enumerate(variants):
            for conv_name, messages in CONVERSATIONS.items():
                for add_generation_prompt in (True, False):
                    context = dict(BASE_CONTEXT, messages=messages, add_generation_prompt=add_generation_prompt)
                    context.update(extra)
                    case = {"name": f"{name}/v{index}/{conv_name}/agp={int(add_generation_prompt)}",
                            "template": f"{name}.jinja", "context": context}
                    case.update(render(env, source, context))
                    cases.append(case)
    snippets = []
    for index, source in enumerate(SNIPPETS):
        context = snippet_context()
        case = {"name": f"snippet/{index}", "source": source, "context": context}
        case.update(render(env, source, context))
        snippets.append(case)
    out = {"fixed_now": FIXED_NOW.isoformat(), "jinja2_version": jinja2.__version__, "cases": cases,
           "snippets": snippets}
    (FIXTURES / "cases.json").write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    n_errors = sum(1 for c in cases if "error" in c)
    print(f"{len(cases)} template cases ({n_errors} expected errors), {len(snippets)} snippets")


if __name__ == "__main__":
    main()
