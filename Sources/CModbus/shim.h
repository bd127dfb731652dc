#ifndef LMC_CMODBUS_SHIM_H
#define LMC_CMODBUS_SHIM_H
#include <modbus.h>
#include <errno.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

/* Macros with expressions are not imported into Swift; restate them as constants. */
static const int lmc_EMBBADCRC = EMBBADCRC;
static const int lmc_EMBBADDATA = EMBBADDATA;
static const int lmc_EMBBADEXC = EMBBADEXC;
static const int lmc_EMBUNKEXC = EMBUNKEXC;
static const int lmc_EMBMDATA = EMBMDATA;
static const int lmc_EMBBADSLAVE = EMBBADSLAVE;

#endif
