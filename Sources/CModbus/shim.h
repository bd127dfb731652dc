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

/* fd_set helpers: FD_SET and friends are macros. */
static inline void lmc_fd_zero(fd_set *set) { FD_ZERO(set); }
static inline void lmc_fd_set(int fd, fd_set *set) { FD_SET(fd, set); }
static inline int lmc_fd_isset(int fd, fd_set *set) { return FD_ISSET(fd, set); }
#endif
