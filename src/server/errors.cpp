#include "server/errors.h"

namespace ember::server {

int http_status_for(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::invalid_argument: return 400;
    case ErrorKind::unsupported: return 400;
    case ErrorKind::invalid_file: return 400;
    case ErrorKind::not_found: return 404;
    case ErrorKind::overloaded: return 429;
    case ErrorKind::unavailable: return 503;
    case ErrorKind::out_of_memory: return 503;
    case ErrorKind::io: return 500;
    case ErrorKind::internal: return 500;
  }
  return 500;
}

std::string error_type_for(int http_status) {
  switch (http_status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 413: return "invalid_request_error";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable_error";
    default: return http_status >= 500 ? "server_error" : "invalid_request_error";
  }
}

ApiError api_error(const Status& st, std::string param) {
  return api_error(http_status_for(st.kind()), st.message(), std::move(param));
}

ApiError api_error(int http_status, std::string message, std::string param, std::string code) {
  ApiError e;
  e.http_status = http_status;
  e.message = std::move(message);
  e.type = error_type_for(http_status);
  e.param = std::move(param);
  e.code = std::move(code);
  return e;
}

Json error_json(const ApiError& e) {
  Json err = {{"message", e.message}, {"type", e.type}, {"param", nullptr}, {"code", nullptr}};
  if (!e.param.empty()) err["param"] = e.param;
  if (!e.code.empty()) err["code"] = e.code;
  return Json{{"error", err}};
}

int retry_after_seconds(int http_status) { return http_status == 429 || http_status == 503 ? 1 : 0; }

}  // namespace ember::server
