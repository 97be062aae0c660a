/* model_cmd.h: `onfh model list` (alias `onfh archs`) and `onfh model init`, the architectures and
 * fresh checkpoints (a model initialised as torchvision does, from onfh's seeded Philox streams).
 */
#ifndef ONFH_MODEL_CMD_H
#define ONFH_MODEL_CMD_H

int cmd_model(int argc, char **argv);
/* `onfh archs`: the architecture table of `onfh model list` (parameters, GMAC, primitives). */
int cmd_archs(int argc, char **argv);

#endif
