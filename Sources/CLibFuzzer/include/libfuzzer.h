// libFuzzer's driver entry (compiler-rt), for lmc-fuzz built with -sanitize=fuzzer: SwiftPM gives the
// executable its own main, which hands over to the driver.
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
