// CUDA error checking: every launch is followed by a check that turns an error into a Status.
#pragma once
#include <cuda_runtime.h>

#include "core/status.h"

namespace ember::cuda {

inline Status cuda_status(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return {};
  return make_error(ErrorKind::internal, "CUDA error in {}: {}", what, cudaGetErrorString(err));
}

// True when a CUDA device is present and usable.
bool device_available();

}  // namespace ember::cuda
