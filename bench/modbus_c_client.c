/* The peer for lmc-bench bridge: libmodbus called directly, the same requests as ModbusBridge makes.
 * Usage: modbus_c_client PORT COUNT — prints nanoseconds per transaction. */
#include <errno.h>
#include <modbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s PORT COUNT\n", argv[0]); return 2; }
    int port = atoi(argv[1]), count = atoi(argv[2]);
    modbus_t *ctx = modbus_new_tcp("127.0.0.1", port);
    if (!ctx || modbus_connect(ctx) != 0) { fprintf(stderr, "connect: %s\n", modbus_strerror(errno)); return 1; }
    modbus_set_slave(ctx, 1);
    uint16_t regs[2];
    for (int i = 0; i < 100; i++) modbus_read_input_registers(ctx, 0, 2, regs);
    double t0 = now();
    for (int i = 0; i < count; i++) {
        if (modbus_read_input_registers(ctx, 0, 2, regs) != 2) { fprintf(stderr, "read: %s\n", modbus_strerror(errno)); return 1; }
    }
    double t = now() - t0;
    printf("%.0f\n", t / count * 1e9);
    modbus_close(ctx);
    modbus_free(ctx);
    return 0;
}
