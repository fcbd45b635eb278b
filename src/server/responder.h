// Turning one request's engine events into an HTTP response: the whole JSON object at
// the end, or server-sent events as tokens arrive. Chat and completions differ only in
// the Responder (openai_chat.cpp, openai_completions.cpp).
#pragma once
#include <memory>
#include <string>

#include "server/request_group.h"
#include "server/responses.h"

namespace httplib {
struct Response;
}

namespace ember::server {

class Responder {
 public:
  virtual ~Responder() = default;
  virtual std::string stream_start() = 0;  // SSE text sent before any token
  // Takes one event; returns SSE text when streaming.
  virtual std::string on_event(const ChoiceEvent& e, bool streaming) = 0;
  virtual std::string stream_end() = 0;  // SSE text after every choice finished (before [DONE])
  virtual Json response() = 0;           // the non-streaming response object

  std::unique_ptr<RequestGroup> group;
  std::string error;  // an engine error, when one happened
  Usage usage;
};

// Waits for the group's events and writes the response (streaming or not). A streaming
// client that goes away cancels the group.
void respond(httplib::Response& res, std::shared_ptr<Responder> responder, bool stream);

}  // namespace ember::server
