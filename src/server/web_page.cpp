// GET /: a minimal chat page (plain HTML and JavaScript, no build step).
#include "server/context.h"

namespace ember::server {

const std::string& chat_page_html() {
  static const std::string page = R"HTML(<!doctype html>
<html><head><meta charset="utf-8"><title>ember</title>
<style>
body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}
#log div{white-space:pre-wrap;margin:.5rem 0;padding:.5rem;border-radius:6px}
.user{background:#e8f0fe}.assistant{background:#f1f3f4}.reasoning{color:#777;font-style:italic}
form{display:flex;gap:.5rem}textarea{flex:1;height:4rem}
</style></head><body>
<h1>ember</h1>
<p><label>API key <input id="key" type="password" size="20"></label>
<label>temperature <input id="temp" type="number" step="0.1" value="0.7" style="width:4rem"></label>
<button id="reset" type="button">reset</button></p>
<div id="log"></div>
<form id="f"><textarea id="msg" placeholder="Say something"></textarea><button>send</button></form>
<script>
const log = document.getElementById('log'); let messages = [];
function add(cls, text) { const d = document.createElement('div'); d.className = cls; d.textContent = text; log.appendChild(d); return d; }
document.getElementById('reset').onclick = () => { messages = []; log.textContent = ''; };
document.getElementById('f').onsubmit = async (e) => {
  e.preventDefault();
  const text = document.getElementById('msg').value.trim(); if (!text) return;
  document.getElementById('msg').value = '';
  messages.push({role: 'user', content: text}); add('user', text);
  const think = add('assistant reasoning', ''), out = add('assistant', '');
  const headers = {'Content-Type': 'application/json'};
  const key = document.getElementById('key').value; if (key) headers['Authorization'] = 'Bearer ' + key;
  const resp = await fetch('/v1/chat/completions', {method: 'POST', headers, body: JSON.stringify(
    {model: 'default', messages, stream: true, temperature: parseFloat(document.getElementById('temp').value)})});
  if (!resp.ok) { out.textContent = 'error: ' + await resp.text(); messages.pop(); return; }
  const reader = resp.body.getReader(), dec = new TextDecoder(); let buf = '', reply = '';
  for (;;) {
    const {done, value} = await reader.read(); if (done) break;
    buf += dec.decode(value, {stream: true});
    let i; while ((i = buf.indexOf('\n\n')) >= 0) {
      const line = buf.slice(0, i); buf = buf.slice(i + 2);
      if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
      const ev = JSON.parse(line.slice(6)); if (ev.error) { out.textContent += '\n[error: ' + ev.error.message + ']'; continue; }
      const d = ev.choices && ev.choices[0] && ev.choices[0].delta; if (!d) continue;
      if (d.reasoning_content) think.textContent += d.reasoning_content;
      if (d.content) { reply += d.content; out.textContent = reply; }
      if (d.tool_calls) out.textContent += '\n[tool call] ' + JSON.stringify(d.tool_calls);
    }
  }
  if (!think.textContent) think.remove();
  messages.push({role: 'assistant', content: reply});
};
</script></body></html>
)HTML";
  return page;
}

}  // namespace ember::server
