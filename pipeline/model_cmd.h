/* model_cmd.h: `onfh model list` (alias `onfh archs`), `onfh model init` and `onfh model
 * profile`: the architectures, fresh checkpoints (a model initialised as torchvision does, from
 * onfh's seeded Philox streams), and when each gradient is final during a training step's
 * backward (the input of the data-parallel cost model, docs/scaling.md). */
#ifndef ONFH_MODEL_CMD_H
#define ONFH_MODEL_CMD_H

int cmd_model(int argc, char **argv);
/* `onfh archs`: the architecture table of `onfh model list` (parameters, GMAC, primitives). */
int cmd_archs(int argc, char **argv);

#endif
