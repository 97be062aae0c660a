/* optimizer.c: one optimizer step over a whole ParamStore (see optimizer.h). */
#include "lib/nn/optimizer.h"

int nn_optim_moments(const NnOptim *o)
{
    switch (o->kind) {
    case NN_ADAMW: return 2;
    case NN_SGD: return o->sgd.momentum != 0.0 ? 1 : 0;
    case NN_RMSPROP: return o->rmsprop.momentum > 0.0 ? 2 : 1;
    }
    return 0;
}

int nn_optim_step(const NnBackend *be, const NnOptim *o, ParamStore *s, long step, Err *e)
{
    int need = nn_optim_moments(o);
    if (!s->allocated || s->n_moments < need)
        return err_set(e, ERR_INTERNAL, "optimizer: store has %d moment buffers, needs %d",
                       s->n_moments, need);
    if (step < 1)
        return err_set(e, ERR_INTERNAL, "optimizer: step %ld (steps count from 1)", step);
    for (int i = 0; i < s->n_views; i++) {
        const NnView *v = &s->views[i];
        if (v->kind != NN_PARAM)
            continue;
        float *p = nn_store_param(s, i);
        const float *g = nn_store_grad(s, i);
        float *m0 = need > 0 ? nn_store_moment(s, 0, i) : NULL;
        float *m1 = need > 1 ? nn_store_moment(s, 1, i) : NULL;
        switch (o->kind) {
        case NN_ADAMW: be->adamw_step(&o->adamw, step, v->decay, v->numel, p, g, m0, m1); break;
        case NN_SGD: be->sgd_step(&o->sgd, step, v->decay, v->numel, p, g, m0); break;
        case NN_RMSPROP: be->rmsprop_step(&o->rmsprop, v->decay, v->numel, p, g, m0, m1); break;
        }
    }
    return 0;
}
