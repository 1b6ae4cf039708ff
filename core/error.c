/* error.c -- see error.h. */
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int tly_fail(tly_error *err, tly_status status, const char *code, const char *fmt, ...)
{
    if (!err)
        return -1;
    err->status = status;
    snprintf(err->code, sizeof err->code, "%s", code ? code : "error");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

void tly_error_clear(tly_error *err)
{
    if (!err)
        return;
    err->status = TLY_OK;
    err->code[0] = '\0';
    err->message[0] = '\0';
}

void tly_error_prefix(tly_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    char prefix[192], old[sizeof err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof old);
    /* Truncation of a long message is fine: it is for humans. */
    size_t n = strlen(prefix);
    if (n > sizeof err->message - 3)
        n = sizeof err->message - 3;
    memcpy(err->message, prefix, n);
    memcpy(err->message + n, ": ", 2);
    size_t rest = sizeof err->message - n - 3;
    size_t olen = strnlen(old, rest);
    memcpy(err->message + n + 2, old, olen);
    err->message[n + 2 + olen] = '\0';
}

const char *tly_status_name(tly_status status)
{
    switch (status) {
    case TLY_OK: return "ok";
    case TLY_E_INVALID: return "invalid";
    case TLY_E_UNPROCESSABLE: return "unprocessable";
    case TLY_E_UNAUTHORIZED: return "unauthorized";
    case TLY_E_FORBIDDEN: return "forbidden";
    case TLY_E_NOT_FOUND: return "not_found";
    case TLY_E_CONFLICT: return "conflict";
    case TLY_E_TOO_LARGE: return "too_large";
    case TLY_E_UNSUPPORTED: return "unsupported";
    case TLY_E_BUSY: return "busy";
    case TLY_E_IO: return "io_error";
    case TLY_E_INTERNAL: return "internal";
    }
    return "unknown";
}
