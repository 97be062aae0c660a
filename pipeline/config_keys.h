/* config_keys.h: onfh's config schema (pipeline/config_keys.c). */
#ifndef ONFH_CONFIG_KEYS_H
#define ONFH_CONFIG_KEYS_H

#include "pipeline/config.h"

extern const CfgKey onfh_config_keys[];
extern const int onfh_config_n_keys;

#endif
