/* fit.c: folds, LSTM training and the cross-validation of fit.h. */
#include "stages/progression/fit.h"

#include <math.h>
#include <string.h>

#include "lib/nn/optimizer.h"
#include "lib/stats/logistic.h"
#include "lib/util/mem.h"
#include "lib/util/philox.h"
#include "lib/util/progress.h"

/* Philox indices under PHILOX_PROGRESSION, one range per use so that streams never meet. */
#define STREAM_FOLDS 0ull
#define STREAM_ORDER (1ull << 32) /* + epoch */

/* order[0..n) = a permutation of 0..n-1 (Fisher-Yates on Philox). */
static void permute(int *order, int n, uint64_t seed, uint64_t index)
{
    Philox p;
    philox_init(&p, seed, PHILOX_PROGRESSION, index);
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)philox_below(&p, (uint32_t)i + 1);
        int s = order[i];
        order[i] = order[j], order[j] = s;
    }
}

void prog_folds(int n, const int *outcome, const int *included, int k, uint64_t seed, int *fold)
{
    int *order = mem_alloc((size_t)(n ? n : 1) * sizeof(int));
    for (int i = 0; i < n; i++)
        fold[i] = -1;
    if (!order)
        return;
    permute(order, n, seed, STREAM_FOLDS);
    /* class 1 first, then class 0, continuing the deal: folds differ in size by at most one */
    int next = 0;
    for (int cls = 1; cls >= 0; cls--)
        for (int j = 0; j < n; j++) {
            int i = order[j];
            if (included[i] && outcome[i] == cls)
                fold[i] = next++ % k;
        }
    mem_free(order);
}

int prog_lstm_train(NnLstm *m, const ProgFit *fit, uint64_t init_seed, int n, int t, int in,
                    const float *x, const int *len, const int *target, double *epoch_s, Err *e)
{
    NnOptim opt = {.kind = NN_ADAMW, .adamw = {fit->lr, 0.9, 0.999, 1e-8, fit->weight_decay}};
    NnLstmConfig cfg = {in, fit->hidden, fit->layers, 2, fit->dropout, fit->seed};
    if (nn_lstm_init(m, &cfg, fit->be, nn_optim_moments(&opt), e))
        return -1;
    nn_lstm_init_weights(m, init_seed);
    int B = fit->batch < n ? fit->batch : n;
    size_t row = (size_t)t * in;
    float *bx = mem_alloc((size_t)B * row * sizeof(float));
    int *bl = mem_alloc((size_t)B * sizeof(int)), *bt = mem_alloc((size_t)B * sizeof(int));
    int *order = mem_alloc((size_t)n * sizeof(int));
    int rc = bx && bl && bt && order ? 0 : err_set(e, ERR_NOMEM, "progression: out of memory");
    long step = 0;
    double t0 = progress_now();
    for (int ep = 0; rc == 0 && ep < fit->epochs; ep++) {
        permute(order, n, fit->seed, STREAM_ORDER + (uint64_t)ep);
        for (int b0 = 0; rc == 0 && b0 < n; b0 += B) {
            int rows = n - b0 < B ? n - b0 : B, bt_max = 1;
            for (int j = 0; j < rows; j++) {
                int i = order[b0 + j];
                bl[j] = len[i], bt[j] = target[i];
                bt_max = len[i] > bt_max ? len[i] : bt_max;
            }
            /* the batch only as long as its longest sequence */
            for (int j = 0; j < rows; j++)
                memcpy(bx + (size_t)j * bt_max * in, x + (size_t)order[b0 + j] * row,
                       (size_t)bt_max * in * sizeof(float));
            step++;
            rc = nn_lstm_forward(m, rows, bt_max, bx, bl, bt, 1, (uint64_t)step, NULL, e);
            if (rc == 0) { /* on the kernels' parameters, wherever the backend keeps them */
                nn_lstm_zero_grads(m);
                nn_lstm_backward(m, NULL);
                rc = nn_lstm_step(m, &opt, step, e);
            }
        }
    }
    if (epoch_s)
        *epoch_s = fit->epochs > 0 ? (progress_now() - t0) / fit->epochs : 0.0;
    mem_free(bx), mem_free(bl), mem_free(bt), mem_free(order);
    if (rc)
        nn_lstm_free(m);
    return rc;
}

/* Softmax probability of class 1 of the last forward's logits (n,2). */
static void class1(const NnLstm *m, int n, double *p)
{
    for (int i = 0; i < n; i++) {
        double z0 = m->logits[2 * i], z1 = m->logits[2 * i + 1];
        p[i] = 1.0 / (1.0 + exp(z0 - z1));
    }
}

int prog_cross_validate(int n, int t_all, int f, const float *values, const float *mask,
                        const float *gap_days, const int *len, const int *outcome, const int *fold,
                        int k, const ProgFit *fit, double *p_lstm, double *p_logistic,
                        double *epoch_s, Err *e)
{
    /* the model's features: fit->use's columns of values, or all f of them */
    int nf = fit->n_use > 0 ? fit->n_use : f, src[PROG_MAX_INPUT_FEATURES];
    if (nf > PROG_MAX_INPUT_FEATURES)
        return err_set(e, ERR_CONFIG, "progression: %d features, at most %d", nf,
                       PROG_MAX_INPUT_FEATURES);
    for (int q = 0; q < nf; q++)
        src[q] = fit->n_use > 0 ? fit->use[q] : q;
    int t = 1, in = 2 * nf + 1;
    for (int i = 0; i < n; i++) {
        p_lstm[i] = p_logistic[i] = NAN;
        if (fold[i] >= 0 && len[i] > t)
            t = len[i];
    }
    size_t nn = (size_t)(n ? n : 1);
    float *z = mem_alloc(nn * t * nf * sizeof(float)), *zm = mem_alloc(nn * t * nf * sizeof(float));
    float *gap = mem_alloc(nn * t * sizeof(float));
    float *x = mem_alloc(nn * t * in * sizeof(float)), *xs = mem_alloc(nn * t * in * sizeof(float));
    double *xl = mem_alloc(nn * in * sizeof(double)), *pk = mem_alloc(nn * sizeof(double));
    int *ls = mem_alloc(nn * sizeof(int)), *ys = mem_alloc(nn * sizeof(int));
    int *who = mem_alloc(nn * sizeof(int));
    int rc = z && zm && gap && x && xs && xl && pk && ls && ys && who
                 ? 0
                 : err_set(e, ERR_NOMEM, "progression: out of memory");
    double total_s = 0.0;
    int trained = 0;
    for (int fk = 0; rc == 0 && fk < k; fk++) {
        /* standardisation from this fold's training patients, visits up to the cut-off */
        double mu[PROG_MAX_INPUT_FEATURES], sd[PROG_MAX_INPUT_FEATURES];
        for (int q = 0; q < nf; q++) {
            double s = 0.0, s2 = 0.0, c = 0.0;
            for (int i = 0; i < n; i++)
                for (int v = 0; fold[i] >= 0 && fold[i] != fk && v < len[i]; v++) {
                    size_t at = ((size_t)i * t_all + v) * f + src[q];
                    if (mask[at] != 0.0f)
                        s += values[at], s2 += (double)values[at] * values[at], c += 1.0;
                }
            mu[q] = c > 0 ? s / c : 0.0;
            double var = c > 1 ? (s2 - c * mu[q] * mu[q]) / (c - 1) : 0.0;
            sd[q] = var > 1e-12 ? sqrt(var) : 1.0;
        }
        for (int i = 0; i < n; i++)
            for (int v = 0; v < t; v++) {
                gap[(size_t)i * t + v] = v < t_all ? gap_days[(size_t)i * t_all + v] : 0.0f;
                for (int q = 0; q < nf; q++) {
                    size_t at = ((size_t)i * t_all + v) * f + src[q];
                    size_t dst = ((size_t)i * t + v) * nf + q;
                    int seen = v < len[i] && mask[at] != 0.0f;
                    zm[dst] = seen ? 1.0f : 0.0f;
                    z[dst] = seen ? (float)((values[at] - mu[q]) / sd[q]) : 0.0f;
                }
            }
        nn_lstm_visit_inputs(n, t, nf, z, zm, gap, x);
        /* the training set, compacted */
        int ntr = 0;
        for (int i = 0; i < n; i++)
            if (fold[i] >= 0 && fold[i] != fk) {
                memcpy(xs + (size_t)ntr * t * in, x + (size_t)i * t * in,
                       (size_t)t * in * sizeof(float));
                for (int q = 0; q < in; q++)
                    xl[(size_t)ntr * in + q] = x[((size_t)i * t + len[i] - 1) * in + q];
                ls[ntr] = len[i], ys[ntr] = outcome[i];
                ntr++;
            }
        int nte = 0;
        for (int i = 0; i < n; i++)
            if (fold[i] == fk)
                who[nte++] = i;
        if (ntr == 0 || nte == 0)
            continue;
        NnLstm m;
        double es = 0.0;
        rc = prog_lstm_train(&m, fit, fit->seed + 0x9E3779B97F4A7C15ull * (uint64_t)(fk + 1), ntr,
                             t, in, xs, ls, ys, &es, e);
        if (rc)
            break;
        total_s += es, trained++;
        for (int j = 0; j < nte; j++) {
            memcpy(xs + (size_t)j * t * in, x + (size_t)who[j] * t * in,
                   (size_t)t * in * sizeof(float));
            ls[j] = len[who[j]];
        }
        rc = nn_lstm_forward(&m, nte, t, xs, ls, NULL, 0, 0, NULL, e);
        if (rc == 0) {
            class1(&m, nte, pk);
            for (int j = 0; j < nte; j++)
                p_lstm[who[j]] = pk[j];
        }
        nn_lstm_free(&m);
        /* logistic regression on the last visit before the cut-off */
        double beta[LOGISTIC_MAX_DIM] = {0};
        if (rc == 0 && in < LOGISTIC_MAX_DIM &&
            logistic_fit(ntr, in, xl, ys, NULL, NULL, 1.0, beta) == 0)
            for (int j = 0; j < nte; j++) {
                const float *xi = x + ((size_t)who[j] * t + len[who[j]] - 1) * in;
                double s = beta[0];
                for (int q = 0; q < in; q++)
                    s += beta[q + 1] * xi[q];
                p_logistic[who[j]] = 1.0 / (1.0 + exp(-s));
            }
    }
    if (epoch_s)
        *epoch_s = trained ? total_s / trained : 0.0;
    mem_free(z), mem_free(zm), mem_free(gap), mem_free(x), mem_free(xs), mem_free(xl);
    mem_free(pk), mem_free(ls), mem_free(ys), mem_free(who);
    return rc;
}
