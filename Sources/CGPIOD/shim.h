#ifndef LMC_CGPIOD_SHIM_H
#define LMC_CGPIOD_SHIM_H
#include <gpiod.h>
#include <errno.h>
#endif
