// GET /: a minimal chat page (plain HTML and JavaScript, no build step).
// The page keeps the conversation in `messages` and streams each reply from
// /v1/chat/completions. While a reply streams, <body data-state="busy"> and send is disabled;
// reset aborts the request in flight. tests/e2e/server/test_web_page.py drives it in Chromium.
#include "server/context.h"

namespace ember::server {

const std::string& chat_page_html() {
  static const std::string page = R"HTML(<!doctype html>
<html><head><meta charset="utf-8"><title>ember</title><link rel="icon" href="data:,">
<style>
body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}
#log div{white-space:pre-wrap;margin:.5rem 0;padding:.5rem;border-radius:6px}#log div:empty{display:none}
.user{background:#e8f0fe}.assistant{background:#f1f3f4}.reasoning{color:#777;font-style:italic}
.error{color:#b00020}#f{display:flex;gap:.5rem}textarea{flex:1;height:4rem}
</style></head><body data-state="idle">
<h1>ember</h1>
<form id="settings" onsubmit="return false"><p>
<label>API key <input id="key" type="password" size="20" autocomplete="off"></label>
<label>temperature <input id="temp" type="number" step="0.1" min="0" value="0.7" style="width:4rem"></label>
<label>max tokens <input id="max" type="number" min="1" placeholder="auto" style="width:5rem"></label>
<button id="reset" type="button">reset</button></p></form>
<div id="log"></div>
<form id="f"><textarea id="msg" placeholder="Say something (Enter sends, Shift+Enter: new line)"></textarea>
<button id="send">send</button></form>
<script>
const $ = (id) => document.getElementById(id);
const log = $('log'); let messages = [], inflight = null;
function add(cls, text) { const d = document.createElement('div'); d.className = cls; d.textContent = text; log.appendChild(d); return d; }
function setBusy(busy) { document.body.dataset.state = busy ? 'busy' : 'idle'; $('send').disabled = busy; }
function requestBody() {
  const body = {model: 'default', messages, stream: true};
  const temp = parseFloat($('temp').value), max = parseInt($('max').value, 10);
  if (Number.isFinite(temp)) body.temperature = temp;
  if (Number.isFinite(max) && max > 0) body.max_tokens = max;
  return JSON.stringify(body);
}
// Reads the SSE stream; returns the reply text, or throws on an error event.
async function readReply(resp, think, out) {
  const reader = resp.body.getReader(), dec = new TextDecoder(); let buf = '', reply = '';
  for (;;) {
    const {done, value} = await reader.read(); if (done) return reply;
    buf += dec.decode(value, {stream: true});
    let i; while ((i = buf.indexOf('\n\n')) >= 0) {
      const line = buf.slice(0, i); buf = buf.slice(i + 2);
      if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
      const ev = JSON.parse(line.slice(6)); if (ev.error) throw new Error(ev.error.message);
      const d = ev.choices && ev.choices[0] && ev.choices[0].delta; if (!d) continue;
      if (d.reasoning_content) think.textContent += d.reasoning_content;
      if (d.content) { reply += d.content; out.textContent = reply; }
      if (d.tool_calls) out.textContent += '\n[tool call] ' + JSON.stringify(d.tool_calls);
      window.scrollTo(0, document.body.scrollHeight);
    }
  }
}
async function send() {
  const text = $('msg').value.trim(); if (!text || inflight) return;
  $('msg').value = '';
  messages.push({role: 'user', content: text}); add('user', text);
  const think = add('assistant reasoning', ''), out = add('assistant', '');
  const headers = {'Content-Type': 'application/json'};
  if ($('key').value) headers['Authorization'] = 'Bearer ' + $('key').value;
  const ctrl = inflight = new AbortController(); setBusy(true);
  try {
    const resp = await fetch('/v1/chat/completions', {method: 'POST', headers, body: requestBody(), signal: ctrl.signal});
    if (!resp.ok) throw new Error(await resp.text());
    const reply = await readReply(resp, think, out);
    messages.push({role: 'assistant', content: reply});
  } catch (err) {
    if (ctrl.signal.aborted) return;  // reset: the conversation is gone already
    add('error', 'error: ' + err.message); messages.pop();
  } finally {
    if (inflight === ctrl) { inflight = null; setBusy(false); }
  }
}
$('reset').onclick = () => { if (inflight) inflight.abort(); inflight = null; setBusy(false); messages = []; log.textContent = ''; };
$('f').onsubmit = (e) => { e.preventDefault(); send(); };
$('msg').onkeydown = (e) => { if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); } };
</script></body></html>
)HTML";
  return page;
}

}  // namespace ember::server
