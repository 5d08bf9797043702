/*
 * weir.h: the Weir UDF ABI v1.1 row interface for C.
 *
 * A C UDF needs no Arrow library: it reads input values and appends output values through the host's
 * `weir::*` imports, and the host builds the Arrow arrays. This header declares those imports and a few
 * inline conveniences; docs/abi.md section 6 is the contract and docs/writing-udfs.md the walk-through.
 *
 *     #include "weir.h"
 *     WEIR_UDF(WEIR_TRANSFORM)
 *     static int32_t in_amount;
 *     WEIR_INIT {
 *         in_amount = weir_in_column_named("amount");
 *         if (in_amount < 0) return weir_fail("the input has no `amount` column");
 *         return weir_declare("amount DOUBLE");
 *     }
 *     WEIR_PROCESS(rows) {
 *         for (int32_t row = 0; row < rows; row++) {
 *             weir_out_f64(0, weir_in_f64(in_amount, row) * 1.1);
 *             weir_out_row();
 *         }
 *         return WEIR_OK;
 *     }
 *
 * Build: clang --target=wasm32-wasi -mexec-model=reactor -O2 -I guest-sdk/c -o udf.wasm udf.c
 */
#ifndef WEIR_H
#define WEIR_H

#include <stdint.h>
#include <string.h>

#define WEIR_DESERIALIZER 1
#define WEIR_TRANSFORM 2
#define WEIR_OK 0
#define WEIR_ERROR 1

#define WEIR_IMPORT(name) __attribute__((import_module("weir"), import_name(#name)))
#define WEIR_EXPORT(name) __attribute__((export_name(#name)))

/* Configuration and schemas (init). Functions that copy text into `dst` return the full length, and copy
 * only when it fits in `cap`; -1 means absent (config) or null (values). */
WEIR_IMPORT(config_get) int32_t weir_config_get(const char *key, int32_t key_len, char *dst, int32_t cap);
WEIR_IMPORT(in_schema) int32_t weir_in_schema(char *dst, int32_t cap);
WEIR_IMPORT(output_schema) void weir_output_schema(const char *ddl, int32_t len);
WEIR_IMPORT(error) void weir_error(const char *message, int32_t len);
WEIR_IMPORT(log) void weir_log(const char *line, int32_t len);

/* Input: columns by index (weir_in_column finds one by name, -1 if absent), rows 0..rows-1. */
WEIR_IMPORT(in_column) int32_t weir_in_column(const char *name, int32_t len);
WEIR_IMPORT(in_is_null) int32_t weir_in_is_null(int32_t col, int32_t row);
WEIR_IMPORT(in_i64) int64_t weir_in_i64(int32_t col, int32_t row);
WEIR_IMPORT(in_f64) double weir_in_f64(int32_t col, int32_t row);
WEIR_IMPORT(in_bytes) int32_t weir_in_bytes(int32_t col, int32_t row, void *dst, int32_t cap);

/* Output: set columns of the current row (unset ones become null), then end it with weir_out_row. */
WEIR_IMPORT(out_null) void weir_out_null(int32_t col);
WEIR_IMPORT(out_i64) void weir_out_i64(int32_t col, int64_t value);
WEIR_IMPORT(out_f64) void weir_out_f64(int32_t col, double value);
WEIR_IMPORT(out_bytes) void weir_out_bytes(int32_t col, const void *data, int32_t len);
WEIR_IMPORT(out_copy) void weir_out_copy(int32_t col, int32_t in_col, int32_t row);
WEIR_IMPORT(out_row) void weir_out_row(void);
WEIR_IMPORT(row_error) void weir_row_error(int32_t row, const char *reason, int32_t len);

/* Declares the module's ABI version and kind; write it once, at file scope. */
#define WEIR_UDF(kind)                                                                             \
    WEIR_EXPORT(weir_abi_v1) int32_t weir_abi_v1(void) { return 1; }                               \
    WEIR_EXPORT(weir_kind) int32_t weir_kind(void) { return (kind); }

/* The two entry points: `WEIR_INIT { ... }` and `WEIR_PROCESS(rows) { ... }`, each returning a status. */
#define WEIR_INIT WEIR_EXPORT(weir_init_rows) int32_t weir_init_rows(void)
#define WEIR_PROCESS(rows) WEIR_EXPORT(weir_process_rows) int32_t weir_process_rows(int32_t rows)

/* Reports a failure of the whole call; `return weir_fail("...")` from init or process. */
static inline int32_t weir_fail(const char *message) {
    weir_error(message, (int32_t)strlen(message));
    return WEIR_ERROR;
}

/* Declares the output schema (Spark DDL) from init; `return weir_declare("...")`. */
static inline int32_t weir_declare(const char *ddl) {
    weir_output_schema(ddl, (int32_t)strlen(ddl));
    return WEIR_OK;
}

static inline int32_t weir_in_column_named(const char *name) {
    return weir_in_column(name, (int32_t)strlen(name));
}

static inline int32_t weir_config_str(const char *key, char *dst, int32_t cap) {
    return weir_config_get(key, (int32_t)strlen(key), dst, cap);
}

static inline void weir_out_str(int32_t col, const char *text) {
    weir_out_bytes(col, text, (int32_t)strlen(text));
}

static inline void weir_reject(int32_t row, const char *reason) {
    weir_row_error(row, reason, (int32_t)strlen(reason));
}

static inline void weir_print(const char *line) {
    weir_log(line, (int32_t)strlen(line));
}

#endif
