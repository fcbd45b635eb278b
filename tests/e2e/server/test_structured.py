"""Structured outputs through the official openai client: response_format json_schema /
json_object and tool_choice required / named, against `ember serve` with SmolLM2-135M."""
import json

import pytest

openai = pytest.importorskip("openai")
jsonschema = pytest.importorskip("jsonschema")

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "age": {"type": "integer"},
        "city": {"type": "string", "maxLength": 24},
        "pets": {"type": "array", "items": {"enum": ["cat", "dog", "fish"]}, "maxItems": 3},
        "born": {"type": "string", "format": "date"},
        "score": {"anyOf": [{"type": "number"}, {"type": "null"}]},
    },
    "required": ["name", "age", "pets"],
    "additionalProperties": False,
}
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                      "parameters": {"type": "object",
                                                     "properties": {"city": {"type": "string", "maxLength": 30},
                                                                    "unit": {"enum": ["celsius", "fahrenheit"]}},
                                                     "required": ["city", "unit"]}}},
    {"type": "function", "function": {"name": "add", "description": "Add two integers",
                                      "parameters": {"type": "object",
                                                     "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                                                     "required": ["a", "b"]}}},
]
MSGS = [{"role": "user", "content": "Describe a person as JSON."}]


def schema_format(schema):
    return {"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}}


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_json_schema_sampled_output_validates(client, seed):
    r = client.chat.completions.create(model="smollm2", messages=MSGS, temperature=0.8, seed=seed, max_tokens=300,
                                       response_format=schema_format(PERSON))
    c = r.choices[0]
    assert c.finish_reason == "stop", c.message.content
    value = json.loads(c.message.content)
    jsonschema.validate(value, PERSON)
    assert list(value)[:2] == ["name", "age"]  # properties in the order given


def test_json_schema_greedy_and_top_k_and_logprobs(client):
    r = client.chat.completions.create(model="smollm2", messages=MSGS, temperature=0, max_tokens=300,
                                       response_format=schema_format(PERSON), logprobs=True, top_logprobs=2)
    jsonschema.validate(json.loads(r.choices[0].message.content), PERSON)
    lps = r.choices[0].logprobs.content
    assert lps and all(t.logprob <= 1e-6 for t in lps)
    # Greedy: the chosen token is the most likely allowed one.
    assert all(abs(t.logprob - t.top_logprobs[0].logprob) < 1e-4 for t in lps)
    r = client.chat.completions.create(model="smollm2", messages=MSGS, temperature=1.0, seed=9, max_tokens=300,
                                       response_format=schema_format(PERSON),
                                       extra_body={"top_k": 20, "min_p": 0.05})
    jsonschema.validate(json.loads(r.choices[0].message.content), PERSON)


def test_json_schema_on_completions_with_refs(client):
    schema = {"$defs": {"item": {"type": "object", "properties": {"id": {"type": "integer"},
                                                                "tags": {"type": "array", "items": {"type": "string", "maxLength": 10},
                                                                         "maxItems": 2}},
                                 "required": ["id", "tags"]}},
              "type": "array", "items": {"$ref": "#/$defs/item"}, "minItems": 1, "maxItems": 3}
    for seed in (1, 2):
        r = client.completions.create(model="smollm2", prompt="A JSON list of items:", max_tokens=200,
                                      temperature=0.8, seed=seed, extra_body={"response_format": schema_format(schema)})
        assert r.choices[0].finish_reason == "stop", r.choices[0].text
        jsonschema.validate(json.loads(r.choices[0].text), schema)


def test_json_object(client):
    r = client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "Say hi."}],
                                       temperature=0.7, seed=4, max_tokens=200, response_format={"type": "json_object"})
    assert r.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(r.choices[0].message.content), dict)


def test_json_schema_streaming_matches(client):
    kw = dict(model="smollm2", messages=MSGS, temperature=0.8, seed=7, max_tokens=300,
              response_format=schema_format(PERSON))
    whole = client.chat.completions.create(**kw).choices[0].message.content
    text, finish = "", None
    for chunk in client.chat.completions.create(stream=True, **kw):
        for c in chunk.choices:
            text += c.delta.content or ""
            finish = c.finish_reason or finish
    assert text == whole and finish == "stop"
    jsonschema.validate(json.loads(text), PERSON)


def test_named_tool_choice(client):
    r = client.chat.completions.create(model="smollm2", temperature=0.8, seed=3, max_tokens=100, tools=TOOLS,
                                       messages=[{"role": "user", "content": "What is 2 plus 40?"}],
                                       tool_choice={"type": "function", "function": {"name": "add"}})
    c = r.choices[0]
    assert c.finish_reason == "tool_calls"
    assert c.message.content is None
    [call] = c.message.tool_calls
    assert call.type == "function" and call.function.name == "add" and call.id
    jsonschema.validate(json.loads(call.function.arguments), TOOLS[1]["function"]["parameters"])


def test_required_tool_choice_round_trip(client):
    messages = [{"role": "user", "content": "What is the weather in Oslo?"}]
    for seed in (1, 2, 3):
        r = client.chat.completions.create(model="smollm2", temperature=0.8, seed=seed, max_tokens=200, tools=TOOLS,
                                           messages=messages, tool_choice="required")
        c = r.choices[0]
        assert c.finish_reason == "tool_calls", c.message.content
        assert c.message.tool_calls
        by_name = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
        for call in c.message.tool_calls:
            jsonschema.validate(json.loads(call.function.arguments), by_name[call.function.name])
    # Round trip: send the calls and a tool result back; the server renders them. (SmolLM2's
    # ChatML template has no tool support and needs a string content.)
    call = c.message.tool_calls[0]
    follow = messages + [
        {"role": "assistant", "content": "", "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "12 degrees"},
    ]
    r2 = client.chat.completions.create(model="smollm2", temperature=0, max_tokens=20, tools=TOOLS, messages=follow)
    assert r2.choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_tool_choice_streaming(client):
    kw = dict(model="smollm2", temperature=0.8, seed=5, max_tokens=120, tools=TOOLS,
              messages=[{"role": "user", "content": "Add 3 and 4."}])
    for choice in ({"type": "function", "function": {"name": "add"}}, "required"):
        whole = client.chat.completions.create(tool_choice=choice, **kw).choices[0].message.tool_calls
        calls, finish = {}, None
        for chunk in client.chat.completions.create(tool_choice=choice, stream=True, **kw):
            for c in chunk.choices:
                finish = c.finish_reason or finish
                for d in c.delta.tool_calls or []:
                    entry = calls.setdefault(d.index, {"name": "", "arguments": ""})
                    entry["name"] += (d.function.name or "") if d.function else ""
                    entry["arguments"] += (d.function.arguments or "") if d.function else ""
        assert finish == "tool_calls"
        assert [c["name"] for c in calls.values()] == [w.function.name for w in whole]
        assert [json.loads(c["arguments"]) for c in calls.values()] == [json.loads(w.function.arguments) for w in whole]


@pytest.mark.parametrize("response_format, fragment", [
    ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "string", "pattern": "^a+$"}}}, "'pattern'"),
    ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": "https://example.com/s.json"}}}, "$ref"),
    ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": "#"}}}, "without consuming"),
    ({"type": "json_schema", "json_schema": {"name": "x"}}, "schema"),
    ({"type": "yaml"}, "response_format.type"),
])
def test_bad_response_format_is_400(client, response_format, fragment):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="smollm2", messages=MSGS, max_tokens=5, response_format=response_format)
    err = e.value.body
    assert err["param"] == "response_format" and fragment in err["message"], err
    assert e.value.status_code == 400


def test_unknown_tool_name_is_400(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="smollm2", messages=MSGS, max_tokens=5, tools=TOOLS,
                                       tool_choice={"type": "function", "function": {"name": "nope"}})
    assert e.value.body["param"] == "tool_choice" and "nope" in e.value.body["message"]


def test_hostile_schema_is_rejected_quickly(server):
    import time
    deep = '{"type":"array","items":' * 3000 + "true" + "}" * 3000  # too deep for Python's json
    body = ('{"model":"smollm2","max_tokens":5,"messages":' + json.dumps(MSGS) +
            ',"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":' + deep + "}}}")
    t0 = time.time()
    status, body, _ = server.post("/v1/chat/completions", body.encode())
    assert status == 400 and "deeper" in json.loads(body)["error"]["message"]
    assert time.time() - t0 < 5
