/* nn_dnnl.h: the oneDNN backend (lib/nn/dnnl), the fast CPU path.
 *
 * Activations are channels last (NN_LAYOUT_NHWC): element (n,c,h,w) of an (N,C,H,W) tensor
 * lives at ((n H + h) W + w) C + c. Parameters stay in PyTorch's layouts (backend.h), so the
 * backend reorders weights into oneDNN's blocked layouts per call and accumulates weight
 * gradients back into OIHW. Primitives are created on first use of a descriptor and cached;
 * conv2d_workspace creates a convolution's primitive descriptors, so the graph's planning pass
 * already does most of the JIT work.
 *
 * Threads: oneDNN and the backend's own loops use OpenMP (OMP_NUM_THREADS). Kernels share one
 * primitive cache and one scratch arena, so call them from one thread at a time (the graph
 * does). A primitive that oneDNN refuses to create is a bug or an unsupported build: the
 * kernels cannot fail (backend.h), so the process aborts with the primitive's name and
 * oneDNN's status. ONFH_DNNL_VERBOSE=1 prints each primitive's implementation once, at
 * creation; a convolution that falls back to a `ref` implementation (orders of magnitude
 * slower) is reported on stderr even without it.
 *
 * Built only where oneDNN is found (ONFH_HAVE_DNNL=1); otherwise nn_backend_dnnl() exists and
 * returns NULL, so callers need no #if to fall back to ref. */
#ifndef ONFH_NN_DNNL_H
#define ONFH_NN_DNNL_H

#include "lib/nn/backend.h"

/* The oneDNN backend's table, or NULL when onfh was built without oneDNN. */
const NnBackend *nn_backend_dnnl(void);

/* Sets the number of threads oneDNN and the backend's loops use from now on (OpenMP's
 * omp_set_num_threads; the default is OMP_NUM_THREADS or the core count). Primitives created
 * earlier keep the thread count they were made for. A no-op without oneDNN. */
void nn_dnnl_set_threads(int n);

/* Frees every cached primitive and the scratch arena (they are rebuilt on demand): for leak
 * checks and for long-lived processes that change models. A no-op without oneDNN. */
void nn_dnnl_release(void);

#endif
