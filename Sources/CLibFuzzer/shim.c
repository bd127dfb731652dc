// Declarations only (include/libfuzzer.h).
