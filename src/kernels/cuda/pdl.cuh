// Programmatic dependent launch (Hopper): a kernel launched with the PDL attribute may
// start while the kernel before it is still running; it must call pdl_wait() before it
// reads anything that kernel wrote. pdl_trigger() lets the next kernel start early; it
// is safe anywhere, because the next kernel's pdl_wait() still waits for this kernel to
// finish. Both are no-ops for kernels launched without the attribute.
#pragma once

namespace ember::cuda {

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

}  // namespace ember::cuda
