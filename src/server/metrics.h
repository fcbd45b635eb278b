// /metrics: the engine's stats in the Prometheus text format (version 0.0.4).
#pragma once
#include <string>

#include "runtime/engine.h"

namespace ember::server {

std::string prometheus_text(const runtime::EngineStats& s, const std::string& model_name);

}  // namespace ember::server
