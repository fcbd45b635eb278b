// Errors as the OpenAI API reports them, and the one mapping from ErrorKind to an HTTP
// status (docs/server.md).
#pragma once
#include <nlohmann/json.hpp>

#include <string>

#include "core/status.h"

namespace ember::server {

using Json = nlohmann::ordered_json;

struct ApiError {
  int http_status = 500;
  std::string message;
  std::string type;   // invalid_request_error, authentication_error, server_error, ...
  std::string param;  // the request field at fault ("" = none)
  std::string code;   // "" = none
};

// The one ErrorKind -> HTTP status mapping.
int http_status_for(ErrorKind kind);
// The OpenAI error type for an HTTP status.
std::string error_type_for(int http_status);

ApiError api_error(const Status& st, std::string param = {});
ApiError api_error(int http_status, std::string message, std::string param = {}, std::string code = {});

// {"error": {"message", "type", "param", "code"}} (param/code null when empty).
Json error_json(const ApiError& e);

// Seconds a client should wait before retrying, for statuses that ask for it (429, 503); 0 otherwise.
int retry_after_seconds(int http_status);

}  // namespace ember::server
