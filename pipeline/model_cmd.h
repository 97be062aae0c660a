/* model_cmd.h: `onfh model list` and `onfh model init`, the architectures and fresh
 * checkpoints (a model initialised as torchvision does, from onfh's seeded Philox streams). */
#ifndef ONFH_MODEL_CMD_H
#define ONFH_MODEL_CMD_H

int cmd_model(int argc, char **argv);

#endif
