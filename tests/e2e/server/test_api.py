"""The OpenAI-compatible API of `ember serve`, through the official openai client."""
import json

import pytest

openai = pytest.importorskip("openai")

MSGS = [{"role": "user", "content": "Name three colors."}]


def test_health_and_models(server, client):
    assert server.get("/health")[0] == 200
    models = client.models.list()
    assert [m.id for m in models.data] == ["smollm2"]


def test_chat(client):
    r = client.chat.completions.create(model="smollm2", messages=MSGS, max_tokens=16, temperature=0)
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens > 0 and 0 < r.usage.completion_tokens <= 16
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_chat_temperature_zero_is_deterministic(client):
    texts = {client.chat.completions.create(model="smollm2", messages=MSGS, max_tokens=12, temperature=0)
             .choices[0].message.content for _ in range(2)}
    assert len(texts) == 1


def test_chat_stream_matches_non_stream(client):
    whole = client.chat.completions.create(model="smollm2", messages=MSGS, max_tokens=16, temperature=0)
    stream = client.chat.completions.create(model="smollm2", messages=MSGS, max_tokens=16, temperature=0,
                                            stream=True, stream_options={"include_usage": True})
    text, finish, usage = "", None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            text += c.delta.content or ""
            finish = c.finish_reason or finish
    assert text == whole.choices[0].message.content
    assert finish == whole.choices[0].finish_reason
    assert usage is not None and usage.completion_tokens == whole.usage.completion_tokens


def test_completion_and_stream(client):
    r = client.completions.create(model="smollm2", prompt="The capital of France is", max_tokens=8, temperature=0)
    assert r.object == "text_completion" and r.choices[0].text
    pieces = [c.choices[0].text for c in client.completions.create(
        model="smollm2", prompt="The capital of France is", max_tokens=8, temperature=0, stream=True) if c.choices]
    assert "".join(pieces) == r.choices[0].text


def test_n_two(client):
    r = client.chat.completions.create(model="smollm2", messages=MSGS, max_tokens=8, n=2, temperature=1.0, seed=5)
    assert sorted(c.index for c in r.choices) == [0, 1]
    assert all(c.message.content for c in r.choices)
    s = client.completions.create(model="smollm2", prompt="Hello", max_tokens=4, n=2, stream=True)
    assert {c.choices[0].index for c in s if c.choices} == {0, 1}


def test_stop(client):
    base = client.completions.create(model="smollm2", prompt="1, 2, 3, 4,", max_tokens=12, temperature=0)
    text = base.choices[0].text
    assert len(text) > 3
    stop = text[2:4]
    r = client.completions.create(model="smollm2", prompt="1, 2, 3, 4,", max_tokens=12, temperature=0, stop=[stop])
    assert r.choices[0].text == text[: text.index(stop)]
    assert r.choices[0].finish_reason == "stop"


def test_seed_reproducible(client):
    def once(seed):
        return client.chat.completions.create(model="smollm2", messages=MSGS, max_tokens=20, temperature=1.0,
                                              seed=seed).choices[0].message.content
    assert once(1234) == once(1234)


def test_logprobs(client):
    r = client.chat.completions.create(model="smollm2", messages=MSGS, max_tokens=5, temperature=0, logprobs=True,
                                       top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert len(content) >= 1
    assert all(e.logprob <= 0 and len(e.top_logprobs) == 3 for e in content)
    assert content[0].top_logprobs[0].logprob >= content[0].top_logprobs[1].logprob
    c = client.completions.create(model="smollm2", prompt="Hello", max_tokens=3, temperature=0, logprobs=2)
    assert len(c.choices[0].logprobs.token_logprobs) == len(c.choices[0].logprobs.tokens) >= 1


def test_penalties_and_bias_accepted(client):
    r = client.chat.completions.create(model="smollm2", messages=MSGS, max_tokens=6, presence_penalty=0.5,
                                       frequency_penalty=0.5, top_p=0.9, extra_body={"top_k": 20, "min_p": 0.05,
                                                                                   "repetition_penalty": 1.1},
                                       logit_bias={"0": -100})
    assert r.choices[0].message.content is not None


def test_tools_accepted(client):
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "weather in a city",
                                               "parameters": {"type": "object",
                                                              "properties": {"city": {"type": "string"}}}}}]
    r = client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "Weather in Paris?"}],
                                       tools=tools, max_tokens=24, temperature=0)
    choice = r.choices[0]
    if choice.message.tool_calls:
        assert choice.finish_reason == "tool_calls"
        json.loads(choice.message.tool_calls[0].function.arguments)


def test_auth(server):
    bad = openai.OpenAI(base_url=server.base + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    status, body, _ = server.post("/v1/chat/completions", {"messages": MSGS}, key=None)
    assert status == 401 and json.loads(body)["error"]["code"] == "invalid_api_key"
    assert server.get("/health")[0] == 200


@pytest.mark.parametrize("extra,param", [
    ({"temperature": 5}, "temperature"),
    ({"max_tokens": -3}, "max_tokens"),
    ({"temperature": "hot"}, "temperature"),
    ({"messages": "hello"}, "messages"),
    ({"n": "two"}, "n"),
    ({"stop": 7}, "stop"),
    ({"max_tokens": 100000}, "max_tokens"),
])
def test_bad_requests(server, client, extra, param):
    body = {"model": "smollm2", "messages": MSGS, **extra}
    status, text, _ = server.post("/v1/chat/completions", body)
    assert status == 400
    err = json.loads(text)["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["param"] == param
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(**body)


def test_bad_json(server):
    status, text, _ = server.post("/v1/completions", b"{not json")
    assert status == 400 and json.loads(text)["error"]["type"] == "invalid_request_error"


def test_tokenize_round_trip(server):
    status, text, _ = server.post("/tokenize", {"prompt": "Hello world", "add_special_tokens": False})
    assert status == 200
    tokens = json.loads(text)["tokens"]
    assert tokens
    status, text, _ = server.post("/detokenize", {"tokens": tokens})
    assert status == 200 and json.loads(text)["prompt"] == "Hello world"


def test_chat_page(server):
    status, text, _ = server.get("/")
    assert status == 200 and "/v1/chat/completions" in text
