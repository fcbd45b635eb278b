#include "server/responder.h"

#include <httplib.h>

#include "server/context.h"

namespace ember::server {

namespace {

constexpr auto kPoll = std::chrono::milliseconds(500);

// Feeds the events that arrived to the responder; records engine errors and usage.
std::string pump(Responder& r, bool streaming) {
  std::string out;
  for (const auto& e : r.group->take(kPoll)) {
    if (e.event.kind == runtime::EngineEvent::Kind::finish) {
      r.usage.add(e.event);
      if (e.event.reason == runtime::FinishReason::error && r.error.empty()) r.error = e.event.error;
    }
    out += r.on_event(e, streaming);
  }
  return out;
}

}  // namespace

void respond(httplib::Response& res, std::shared_ptr<Responder> responder, bool stream) {
  if (!stream) {
    while (!responder->group->finished()) pump(*responder, false);
    if (!responder->error.empty()) return send_error(res, api_error(500, responder->error));
    return send_json(res, 200, responder->response());
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  auto started = std::make_shared<bool>(false);
  res.set_chunked_content_provider(
      "text/event-stream",
      [responder, started](size_t, httplib::DataSink& sink) {
        std::string out;
        if (!*started) {
          out = responder->stream_start();
          *started = true;
        }
        out += pump(*responder, true);
        const bool done = responder->group->finished();
        if (done) {
          if (!responder->error.empty())
            out += sse(error_json(api_error(500, responder->error)));
          out += responder->stream_end() + "data: [DONE]\n\n";
        }
        if (out.empty()) out = ": keep-alive\n\n";  // finds clients that went away while queued
        if (!sink.write(out.data(), out.size())) {
          responder->group->cancel_all();
          return false;
        }
        if (done) sink.done();
        return true;
      },
      [responder](bool success) {
        if (!success) responder->group->cancel_all();
      });
}

}  // namespace ember::server
