/*
 * lutkan native custom-op library: a forwarder, not a Python module (load it with ctypes).
 *
 * onnxruntime's SessionOptions.register_custom_ops_library(path) dlopens this file and calls
 * RegisterCustomOps(options, api_base). This file needs no onnxruntime header: it forwards the call to a
 * function pointer that lutkan.runtime_ext.native sets with lutkan_set_register() when it is imported.
 * The op itself (LUTKanEdge's compute entry) is a Numba @cfunc; see lutkan/runtime_ext/native.py.
 *
 * lutkan_alloc/lutkan_free give Python the allocator whose free() onnxruntime calls as the op's
 * KernelDestroy, so a kernel's memory is released without calling back into Python.
 */
#include <stdlib.h>

#if defined(_WIN32)
#define LUTKAN_EXPORT __declspec(dllexport)
#else
#define LUTKAN_EXPORT __attribute__((visibility("default")))
#endif

typedef void *(*lutkan_register_fn)(void *options, const void *api_base);
typedef const void *(*ort_get_api_fn)(unsigned int version);
typedef void *(*ort_create_status_fn)(int code, const char *msg);

static lutkan_register_fn registered = NULL;

LUTKAN_EXPORT void lutkan_set_register(lutkan_register_fn fn) { registered = fn; }

LUTKAN_EXPORT void *RegisterCustomOps(void *options, const void *api_base) {
  const void *api;
  if (registered != NULL) return registered(options, api_base);
  /* Loaded without lutkan.runtime_ext: report it. OrtApiBase entry 0 is GetApi; OrtApi entry 0 is
     CreateStatus; 1 is ORT_FAIL. */
  api = ((const ort_get_api_fn *)api_base)[0](1);
  if (api == NULL) return NULL;
  return ((const ort_create_status_fn *)api)[0](
      1, "lutkan native op library: import lutkan.runtime_ext (and call lutkan.runtime_ext.library_path()) in this "
         "Python process before registering it; the op kernels live in that module");
}

LUTKAN_EXPORT void *lutkan_alloc(size_t n) { return calloc(1, n); }

LUTKAN_EXPORT void lutkan_free(void *p) { free(p); }

/* setuptools builds this as an extension module (and on Windows exports this name); it is not one. */
LUTKAN_EXPORT void *PyInit__native(void) { return NULL; }
