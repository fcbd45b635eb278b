// --dump-tensors: writes every named activation of chosen layers to files so a run can
// be diffed against another device or a reference implementation, layer by layer.
#pragma once
#include <set>
#include <string>

#include "core/status.h"
#include "model/decoder.h"

namespace ember::cli {

// Files in `dir`: NAME.f32 (layer-less) or NAME.L<il>.f32, raw little-endian f32 rows
// appended per forward call, plus index.tsv (name, layer, row width) listing each file
// once. `layers` empty = every layer.
Expected<model::DumpFn> make_tensor_dumper(const std::string& dir, std::set<int> layers);

}  // namespace ember::cli
