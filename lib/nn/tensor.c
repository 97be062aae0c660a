/* tensor.c: tensors and the flat parameter store (see tensor.h).
 *
 * The store is built in two phases so that memory is planned before it is taken: nn_store_add
 * only records names, shapes and offsets; nn_store_alloc then makes each flat buffer with one
 * allocation. Views are offsets, not pointers, so the table stays valid whatever the buffers
 * are (a checkpoint or an all-reduce sees only the flat buffers). */
#include "lib/nn/tensor.h"

#include <string.h>

#include "lib/util/mem.h"

/* Parameter views start on multiples of this many floats (64 bytes). */
#define PARAM_ALIGN 16

Tensor nn_tensor(float *data, int ndim, const int *shape)
{
    Tensor t = {.data = data, .ndim = ndim};
    for (int i = 0; i < ndim && i < NN_MAX_DIMS; i++)
        t.shape[i] = shape[i];
    return t;
}

Tensor nn_tensor4(float *data, int n, int c, int h, int w)
{
    const int shape[4] = {n, c, h, w};
    return nn_tensor(data, 4, shape);
}

size_t nn_numel(const Tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (size_t)t->shape[i];
    return n;
}

/* Checks a shape; on success *numel is the element count. */
static int check_shape(int ndim, const int *shape, size_t *numel, const char *what, Err *e)
{
    if (ndim < 0 || ndim > NN_MAX_DIMS)
        return err_set(e, ERR_INTERNAL, "%s: %d dimensions (at most %d)", what, ndim, NN_MAX_DIMS);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0)
            return err_set(e, ERR_INTERNAL, "%s: dimension %d is %d", what, i, shape[i]);
        n *= (size_t)shape[i];
    }
    *numel = n;
    return 0;
}

int nn_tensor_alloc(Tensor *t, int ndim, const int *shape, Err *e)
{
    size_t n;
    *t = (Tensor){0};
    int rc = check_shape(ndim, shape, &n, "tensor", e);
    if (rc)
        return rc;
    float *data = mem_calloc(n, sizeof(float));
    if (!data)
        return err_set(e, ERR_NOMEM, "out of memory for a tensor of %zu floats", n);
    *t = nn_tensor(data, ndim, shape);
    return 0;
}

void nn_tensor_free(Tensor *t)
{
    mem_free(t->data);
    *t = (Tensor){0};
}

// ---------------------------------------------------------------------------------------------
// The store

void nn_store_init(ParamStore *s)
{
    *s = (ParamStore){0};
}

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

int nn_store_add(ParamStore *s, int kind, const char *name, int ndim, const int *shape, int decay,
                 Err *e)
{
    size_t numel;
    if (s->allocated)
        return err_set(e, ERR_INTERNAL, "param store: '%s' added after allocation", name);
    if (kind != NN_PARAM && kind != NN_BUFFER && kind != NN_COUNTER)
        return err_set(e, ERR_INTERNAL, "param store: '%s' has unknown kind %d", name, kind);
    if (strlen(name) == 0 || strlen(name) >= NN_NAME_MAX)
        return err_set(e, ERR_INTERNAL, "param store: name '%s' is empty or too long", name);
    if (nn_store_find(s, name) >= 0)
        return err_set(e, ERR_INTERNAL, "param store: '%s' added twice", name);
    int rc = check_shape(ndim, shape, &numel, name, e);
    if (rc)
        return rc;
    if (s->n_views == s->cap_views) {
        int cap = s->cap_views ? 2 * s->cap_views : 64;
        NnView *v = mem_realloc(s->views, (size_t)cap * sizeof *v);
        if (!v)
            return err_set(e, ERR_NOMEM, "param store: out of memory adding '%s'", name);
        s->views = v;
        s->cap_views = cap;
    }
    char *copy = mem_strdup(name);
    if (!copy)
        return err_set(e, ERR_NOMEM, "param store: out of memory adding '%s'", name);

    NnView *v = &s->views[s->n_views++];
    *v = (NnView){.name = copy, .kind = kind, .decay = kind == NN_PARAM && decay, .ndim = ndim};
    for (int i = 0; i < ndim; i++)
        v->shape[i] = shape[i];
    v->numel = numel;
    if (kind == NN_PARAM) {
        v->offset = s->n_param;
        s->n_param = round_up(s->n_param + numel, PARAM_ALIGN);
    } else if (kind == NN_BUFFER) {
        v->offset = s->n_buffer;
        s->n_buffer += numel;
    } else {
        v->offset = s->n_counter;
        s->n_counter += numel;
    }
    return 0;
}

int nn_store_alloc(ParamStore *s, int n_moments, Err *e)
{
    if (s->allocated)
        return err_set(e, ERR_INTERNAL, "param store: allocated twice");
    if (n_moments < 0 || n_moments > NN_MAX_MOMENTS)
        return err_set(e, ERR_INTERNAL, "param store: %d moment buffers (at most %d)", n_moments,
                       NN_MAX_MOMENTS);
    /* calloc of 0 elements still returns a block, so every pointer is non-NULL afterwards */
    s->params = mem_calloc(s->n_param, sizeof(float));
    if (!s->params)
        goto out_nomem;
    s->grads = mem_calloc(s->n_param, sizeof(float));
    if (!s->grads)
        goto out_free_params;
    for (int k = 0; k < n_moments; k++) {
        s->moments[k] = mem_calloc(s->n_param, sizeof(float));
        if (!s->moments[k])
            goto out_free_moments;
    }
    s->buffers = mem_calloc(s->n_buffer, sizeof(float));
    if (!s->buffers)
        goto out_free_moments;
    s->counters = mem_calloc(s->n_counter, sizeof(int64_t));
    if (!s->counters)
        goto out_free_buffers;
    s->n_moments = n_moments;
    s->allocated = 1;
    return 0;

out_free_buffers:
    mem_free(s->buffers);
    s->buffers = NULL;
out_free_moments:
    for (int k = 0; k < n_moments; k++) {
        mem_free(s->moments[k]);
        s->moments[k] = NULL;
    }
    mem_free(s->grads);
    s->grads = NULL;
out_free_params:
    mem_free(s->params);
    s->params = NULL;
out_nomem:
    return err_set(e, ERR_NOMEM, "param store: out of memory for %zu parameters", s->n_param);
}

void nn_store_free(ParamStore *s)
{
    for (int i = 0; i < s->n_views; i++)
        mem_free(s->views[i].name);
    mem_free(s->views);
    mem_free(s->params);
    mem_free(s->grads);
    for (int k = 0; k < NN_MAX_MOMENTS; k++)
        mem_free(s->moments[k]);
    mem_free(s->buffers);
    mem_free(s->counters);
    *s = (ParamStore){0};
}

int nn_store_find(const ParamStore *s, const char *name)
{
    for (int i = 0; i < s->n_views; i++)
        if (strcmp(s->views[i].name, name) == 0)
            return i;
    return -1;
}

float *nn_store_param(const ParamStore *s, int i)
{
    return s->params + s->views[i].offset;
}

float *nn_store_grad(const ParamStore *s, int i)
{
    return s->grads + s->views[i].offset;
}

float *nn_store_moment(const ParamStore *s, int k, int i)
{
    return s->moments[k] + s->views[i].offset;
}

float *nn_store_buffer(const ParamStore *s, int i)
{
    return s->buffers + s->views[i].offset;
}

int64_t *nn_store_counter(const ParamStore *s, int i)
{
    return s->counters + s->views[i].offset;
}

Tensor nn_store_tensor(const ParamStore *s, int i)
{
    const NnView *v = &s->views[i];
    float *data = v->kind == NN_PARAM ? nn_store_param(s, i) : nn_store_buffer(s, i);
    return nn_tensor(data, v->ndim, v->shape);
}

Tensor nn_store_grad_tensor(const ParamStore *s, int i)
{
    const NnView *v = &s->views[i];
    return nn_tensor(nn_store_grad(s, i), v->ndim, v->shape);
}

void nn_store_zero_grads(ParamStore *s)
{
    memset(s->grads, 0, s->n_param * sizeof(float));
}

size_t nn_store_param_count(const ParamStore *s)
{
    size_t n = 0;
    for (int i = 0; i < s->n_views; i++)
        if (s->views[i].kind == NN_PARAM)
            n += s->views[i].numel;
    return n;
}
